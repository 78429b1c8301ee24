"""`KubeApi`: one kubernetes client for one cluster, from a kubeconfig path and an optional context."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from netpolcheck.errors import UsageError


@dataclass
class KubeApi:
    """A kubernetes `ApiClient` plus the typed API groups the suite uses.

    The typed accessors are `Any`: the suite passes plain dicts as bodies, which the client
    serialises as they are, and reads typed models back."""

    api_client: client.ApiClient
    kubeconfig: Path | None = None
    context: str | None = None
    _paths: dict[tuple[str, str], tuple[str, bool]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | Path, context: str | None = None) -> KubeApi:
        """Raises UsageError (one line) for a missing or unreadable kubeconfig or an unknown context."""
        path = Path(kubeconfig).expanduser()
        if not path.is_file():
            raise UsageError(f"kubeconfig {path} does not exist")
        try:
            api = config.new_client_from_config(str(path), context=context)
        except (ConfigException, yaml.YAMLError, OSError, ValueError, TypeError, KeyError) as exc:
            where = f" (context {context!r})" if context else ""
            why = " ".join(str(exc).split())  # YAML errors span lines; the message is one
            raise UsageError(f"kubeconfig {path}{where} is not usable: {why}") from None
        return cls(api, path, context)

    @property
    def core(self) -> Any:
        return client.CoreV1Api(self.api_client)

    @property
    def apps(self) -> Any:
        return client.AppsV1Api(self.api_client)

    @property
    def networking(self) -> Any:
        return client.NetworkingV1Api(self.api_client)

    @property
    def rbac(self) -> Any:
        return client.RbacAuthorizationV1Api(self.api_client)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: list[tuple[str, Any]] | None = None,
        content_type: str = "application/json",
        timeout: float = 60.0,
    ) -> Any:
        """A raw REST call returning the decoded JSON as plain dicts (camelCase, as the API has it).

        Raises `kubernetes.client.ApiException` for a non-2xx answer, like the typed APIs."""
        headers = {"Accept": "application/json", "Content-Type": content_type}
        method, url, headers, payload, _ = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api_client.call_api(
            method, url, header_params=headers, body=payload, _request_timeout=timeout
        )
        response.read()
        text = (response.data or b"").decode("utf-8", errors="replace")
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(http_resp=response, body=text, data=None)
        return json.loads(text) if text else None

    def resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        """(URL prefix of the group version + plural, namespaced) for a kind, from API discovery.

        Cached per client. Raises UsageError when the server does not serve that kind."""
        key = (api_version, kind)
        if key not in self._paths:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            try:
                listing = self.request("GET", base)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                listing = {"resources": []}
            for res in listing.get("resources") or []:
                if "/" not in res["name"]:
                    self._paths[(api_version, res["kind"])] = (
                        f"{base}/{res['name']}",
                        bool(res["namespaced"]),
                    )
            if key not in self._paths:
                raise UsageError(f"the cluster does not serve {kind} in {api_version}")
        return self._paths[key]

    def close(self) -> None:
        self.api_client.close()
