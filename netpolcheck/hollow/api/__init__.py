"""The hollow cluster's API server: object store, REST handlers, TLS, kubeconfig."""
