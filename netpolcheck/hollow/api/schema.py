"""The Go types behind the served kinds, as far as this server checks them.

A real API server decodes every body into its Go structs, so a value of the wrong JSON type is a
400 BadRequest ("cannot unmarshal string into Go struct field ...") before any validation runs.
`MESSAGES` describes those structs: the JSON name, the type and, for the messages kubectl sends as
protobuf (`protobuf.py`), the field number from Kubernetes' generated.proto. Fields not listed here
are not checked (the server does not enforce unknown-field rules).
"""

from __future__ import annotations

from dataclasses import dataclass

# Scalar types; any other type name is a key of MESSAGES.
STRING, INT32, INT64, BOOL, BYTES, TIME = "string", "int32", "int64", "bool", "bytes", "time"
INTSTR, QUANTITY, OBJECT = "intstr", "quantity", "object"  # int or string; string or number; any map
SCALARS = frozenset({STRING, INT32, INT64, BOOL, BYTES, TIME, INTSTR, QUANTITY, OBJECT})


@dataclass(frozen=True)
class Field:
    type: str
    number: int = 0  # protobuf field number; 0 where the message is never decoded from protobuf
    repeated: bool = False  # JSON array
    map: bool = False  # JSON object of string -> type
    ptr: bool = False  # Go pointer: present even when zero (protobuf and JSON keep it)


def f(type_: str, number: int = 0, *, ptr: bool = False) -> Field:
    return Field(type_, number, ptr=ptr)


def lst(type_: str, number: int = 0) -> Field:
    return Field(type_, number, repeated=True)


def mp(type_: str, number: int = 0) -> Field:
    return Field(type_, number, map=True)


# message name -> fields by JSON name (every message is in a Go package imported as "v1")
MESSAGES: dict[str, dict[str, Field]] = {
    "ObjectMeta": {
        "name": f(STRING, 1),
        "generateName": f(STRING, 2),
        "namespace": f(STRING, 3),
        "selfLink": f(STRING, 4),
        "uid": f(STRING, 5),
        "resourceVersion": f(STRING, 6),
        "generation": f(INT64, 7),
        "creationTimestamp": f(TIME, 8),
        "deletionTimestamp": f(TIME, 9, ptr=True),
        "deletionGracePeriodSeconds": f(INT64, 10, ptr=True),
        "labels": mp(STRING, 11),
        "annotations": mp(STRING, 12),
        "ownerReferences": lst("OwnerReference", 13),
        "finalizers": lst(STRING, 14),
        "managedFields": lst("ManagedFieldsEntry", 17),
    },
    "OwnerReference": {
        "kind": f(STRING, 1),
        "name": f(STRING, 3),
        "uid": f(STRING, 4),
        "apiVersion": f(STRING, 5),
        "controller": f(BOOL, 6, ptr=True),
        "blockOwnerDeletion": f(BOOL, 7, ptr=True),
    },
    "ManagedFieldsEntry": {
        "manager": f(STRING, 1),
        "operation": f(STRING, 2),
        "apiVersion": f(STRING, 3),
        "time": f(TIME, 4, ptr=True),
        "fieldsType": f(STRING, 6),
        "fieldsV1": f("FieldsV1", 7, ptr=True),
        "subresource": f(STRING, 8),
    },
    "FieldsV1": {},  # raw JSON in field 1; decoded specially
    "LabelSelector": {"matchLabels": mp(STRING, 1), "matchExpressions": lst("LabelSelectorRequirement", 2)},
    "LabelSelectorRequirement": {"key": f(STRING, 1), "operator": f(STRING, 2), "values": lst(STRING, 3)},
    "Condition": {
        "type": f(STRING, 1),
        "status": f(STRING, 2),
        "lastProbeTime": f(TIME, 3),
        "lastTransitionTime": f(TIME, 4),
        "lastHeartbeatTime": f(TIME),
        "reason": f(STRING, 5),
        "message": f(STRING, 6),
        "observedGeneration": f(INT64),
    },
    "DeleteOptions": {
        "gracePeriodSeconds": f(INT64, 1, ptr=True),
        "preconditions": f("Preconditions", 2, ptr=True),
        "orphanDependents": f(BOOL, 3, ptr=True),
        "propagationPolicy": f(STRING, 4, ptr=True),
        "dryRun": lst(STRING, 5),
    },
    "Preconditions": {"uid": f(STRING, 1, ptr=True), "resourceVersion": f(STRING, 2, ptr=True)},
    # ---- core/v1 -------------------------------------------------------------------------------
    "Namespace": {
        "metadata": f("ObjectMeta", 1),
        "spec": f("NamespaceSpec", 2),
        "status": f("NamespaceStatus", 3),
    },
    "NamespaceSpec": {"finalizers": lst(STRING, 1)},
    "NamespaceStatus": {"phase": f(STRING, 1), "conditions": lst("Condition", 2)},
    "ConfigMap": {
        "metadata": f("ObjectMeta", 1),
        "data": mp(STRING, 2),
        "binaryData": mp(BYTES, 3),
        "immutable": f(BOOL, 4, ptr=True),
    },
    "Secret": {
        "metadata": f("ObjectMeta", 1),
        "data": mp(BYTES, 2),
        "type": f(STRING, 3),
        "stringData": mp(STRING, 4),
        "immutable": f(BOOL, 5, ptr=True),
    },
    "ServiceAccount": {
        "metadata": f("ObjectMeta", 1),
        "secrets": lst("ObjectReference", 2),
        "imagePullSecrets": lst("LocalObjectReference", 3),
        "automountServiceAccountToken": f(BOOL, 4, ptr=True),
    },
    "ObjectReference": {
        "kind": f(STRING, 1),
        "namespace": f(STRING, 2),
        "name": f(STRING, 3),
        "uid": f(STRING, 4),
        "apiVersion": f(STRING, 5),
        "resourceVersion": f(STRING, 6),
        "fieldPath": f(STRING, 7),
    },
    "LocalObjectReference": {"name": f(STRING, 1)},
    "Pod": {"metadata": f("ObjectMeta"), "spec": f("PodSpec"), "status": f("PodStatus")},
    "PodTemplateSpec": {"metadata": f("ObjectMeta"), "spec": f("PodSpec")},
    "PodSpec": {
        "volumes": lst(OBJECT),
        "initContainers": lst("Container"),
        "containers": lst("Container"),
        "restartPolicy": f(STRING),
        "terminationGracePeriodSeconds": f(INT64, ptr=True),
        "activeDeadlineSeconds": f(INT64, ptr=True),
        "dnsPolicy": f(STRING),
        "nodeSelector": mp(STRING),
        "serviceAccountName": f(STRING),
        "serviceAccount": f(STRING),
        "automountServiceAccountToken": f(BOOL, ptr=True),
        "nodeName": f(STRING),
        "hostNetwork": f(BOOL),
        "hostPID": f(BOOL),
        "hostIPC": f(BOOL),
        "shareProcessNamespace": f(BOOL, ptr=True),
        "securityContext": f(OBJECT),
        "imagePullSecrets": lst("LocalObjectReference"),
        "hostname": f(STRING),
        "subdomain": f(STRING),
        "affinity": f(OBJECT),
        "schedulerName": f(STRING),
        "tolerations": lst("Toleration"),
        "priorityClassName": f(STRING),
        "priority": f(INT32, ptr=True),
    },
    "Container": {
        "name": f(STRING),
        "image": f(STRING),
        "command": lst(STRING),
        "args": lst(STRING),
        "workingDir": f(STRING),
        "ports": lst("ContainerPort"),
        "env": lst("EnvVar"),
        "resources": f(OBJECT),
        "volumeMounts": lst("VolumeMount"),
        "livenessProbe": f(OBJECT),
        "readinessProbe": f(OBJECT),
        "startupProbe": f(OBJECT),
        "lifecycle": f(OBJECT),
        "imagePullPolicy": f(STRING),
        "securityContext": f(OBJECT),
        "stdin": f(BOOL),
        "stdinOnce": f(BOOL),
        "tty": f(BOOL),
    },
    "ContainerPort": {
        "name": f(STRING),
        "hostPort": f(INT32),
        "containerPort": f(INT32),
        "protocol": f(STRING),
        "hostIP": f(STRING),
    },
    "EnvVar": {"name": f(STRING), "value": f(STRING), "valueFrom": f(OBJECT)},
    "VolumeMount": {"name": f(STRING), "readOnly": f(BOOL), "mountPath": f(STRING), "subPath": f(STRING)},
    "Toleration": {
        "key": f(STRING),
        "operator": f(STRING),
        "value": f(STRING),
        "effect": f(STRING),
        "tolerationSeconds": f(INT64, ptr=True),
    },
    "PodStatus": {
        "phase": f(STRING),
        "conditions": lst("Condition"),
        "message": f(STRING),
        "reason": f(STRING),
        "hostIP": f(STRING),
        "podIP": f(STRING),
        "podIPs": lst("PodIP"),
        "startTime": f(TIME),
        "initContainerStatuses": lst("ContainerStatus"),
        "containerStatuses": lst("ContainerStatus"),
        "qosClass": f(STRING),
    },
    "PodIP": {"ip": f(STRING)},
    "ContainerStatus": {
        "name": f(STRING),
        "state": f(OBJECT),
        "lastState": f(OBJECT),
        "ready": f(BOOL),
        "restartCount": f(INT32),
        "image": f(STRING),
        "imageID": f(STRING),
        "containerID": f(STRING),
        "started": f(BOOL, ptr=True),
    },
    "Node": {"metadata": f("ObjectMeta"), "spec": f("NodeSpec"), "status": f("NodeStatus")},
    "NodeSpec": {
        "podCIDR": f(STRING),
        "podCIDRs": lst(STRING),
        "providerID": f(STRING),
        "unschedulable": f(BOOL),
        "taints": lst("Taint"),
    },
    "Taint": {"key": f(STRING), "value": f(STRING), "effect": f(STRING), "timeAdded": f(TIME, ptr=True)},
    "NodeStatus": {
        "capacity": mp(QUANTITY),
        "allocatable": mp(QUANTITY),
        "phase": f(STRING),
        "conditions": lst("Condition"),
        "addresses": lst("NodeAddress"),
        "nodeInfo": f("NodeSystemInfo"),
    },
    "NodeAddress": {"type": f(STRING), "address": f(STRING)},
    "NodeSystemInfo": {
        key: f(STRING)
        for key in (
            "machineID",
            "systemUUID",
            "bootID",
            "kernelVersion",
            "osImage",
            "containerRuntimeVersion",
            "kubeletVersion",
            "kubeProxyVersion",
            "operatingSystem",
            "architecture",
        )
    },
    # ---- networking.k8s.io/v1 ------------------------------------------------------------------
    "NetworkPolicy": {"metadata": f("ObjectMeta"), "spec": f("NetworkPolicySpec")},
    "NetworkPolicySpec": {
        "podSelector": f("LabelSelector"),
        "ingress": lst("NetworkPolicyIngressRule"),
        "egress": lst("NetworkPolicyEgressRule"),
        "policyTypes": lst(STRING),
    },
    "NetworkPolicyIngressRule": {"ports": lst("NetworkPolicyPort"), "from": lst("NetworkPolicyPeer")},
    "NetworkPolicyEgressRule": {"ports": lst("NetworkPolicyPort"), "to": lst("NetworkPolicyPeer")},
    "NetworkPolicyPort": {
        "protocol": f(STRING, ptr=True),
        "port": f(INTSTR, ptr=True),
        "endPort": f(INT32, ptr=True),
    },
    "NetworkPolicyPeer": {
        "podSelector": f("LabelSelector", ptr=True),
        "namespaceSelector": f("LabelSelector", ptr=True),
        "ipBlock": f("IPBlock", ptr=True),
    },
    "IPBlock": {"cidr": f(STRING), "except": lst(STRING)},
    # ---- apps/v1 -------------------------------------------------------------------------------
    "DaemonSet": {"metadata": f("ObjectMeta"), "spec": f("DaemonSetSpec"), "status": f("DaemonSetStatus")},
    "DaemonSetSpec": {
        "selector": f("LabelSelector", ptr=True),
        "template": f("PodTemplateSpec"),
        "updateStrategy": f("DaemonSetUpdateStrategy"),
        "minReadySeconds": f(INT32),
        "revisionHistoryLimit": f(INT32, ptr=True),
        "templateGeneration": f(INT64),
    },
    "DaemonSetUpdateStrategy": {"type": f(STRING), "rollingUpdate": f("RollingUpdateDaemonSet", ptr=True)},
    "RollingUpdateDaemonSet": {"maxUnavailable": f(INTSTR, ptr=True), "maxSurge": f(INTSTR, ptr=True)},
    "DaemonSetStatus": {
        "currentNumberScheduled": f(INT32),
        "numberMisscheduled": f(INT32),
        "desiredNumberScheduled": f(INT32),
        "numberReady": f(INT32),
        "observedGeneration": f(INT64),
        "updatedNumberScheduled": f(INT32),
        "numberAvailable": f(INT32),
        "numberUnavailable": f(INT32),
        "collisionCount": f(INT32, ptr=True),
        "conditions": lst("Condition"),
    },
}

_METADATA_ONLY = {"metadata": f("ObjectMeta")}


def message(kind: str) -> dict[str, Field]:
    """The fields of `kind`; kinds without a description here get their `metadata` checked only."""
    return MESSAGES.get(kind, _METADATA_ONLY)
