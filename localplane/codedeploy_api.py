"""CodeDeploy for the local moto (`localplane.emulator`): the calls moto 5.2 lacks, and a local-only status move.

Two halves, one concept (the local CodeDeploy API):

- `patch_codedeploy`, applied in the emulator process, adds what the CodeDeploy kinds and the local plane need
  and moto 5.2 answers with HTTP 500 or drops: UpdateApplication, DeleteApplication, UpdateDeploymentGroup,
  DeleteDeploymentGroup and StopDeployment with AWS's semantics (the deletes succeed on what is already gone, as
  AWS's do; a stop of a finished deployment is DeploymentAlreadyCompletedException); GetDeploymentGroup returns
  the ``alarmConfiguration`` it was given (moto answers ``{}``) and its last attempted and successful deployments;
  GetDeployment returns ``errorInformation``, ``rollbackInfo`` and the status messages a deployment collected.
- A deployment's status never moves in moto (it stays ``Created``): on AWS, CodeDeploy's engine moves it. Here the
  engine is the local plane, and it moves the status with one local-only action, ``LocalUpdateDeploymentStatus``
  (X-Amz-Target ``CodeDeploy_20141006.LocalUpdateDeploymentStatus``), which exists in this emulator only and is
  never sent to AWS: `update_deployment_status` refuses an endpoint that is not a loopback one. Moves follow
  CodeDeploy's life cycle: Created -> InProgress -> Succeeded | Failed | Stopped (Created may also go straight to
  Failed or Stopped); a finished deployment does not move again. ``errorInformation`` ({code, message}) and
  ``rollbackInfo`` ({rollbackDeploymentId, rollbackTriggeringDeploymentId, rollbackMessage}) are stored as given.

Called by `localplane.emulator.patch_moto` (the patch) and by the local plane (`update_deployment_status`).
"""

from __future__ import annotations

import json
from typing import Any

LOCAL_ACTION = "LocalUpdateDeploymentStatus"
TARGET_PREFIX = "CodeDeploy_20141006"
CREATED, IN_PROGRESS = "Created", "InProgress"
SUCCEEDED, FAILED, STOPPED = "Succeeded", "Failed", "Stopped"
FINISHED = frozenset({SUCCEEDED, FAILED, STOPPED})
_MOVES = {CREATED: {IN_PROGRESS, FAILED, STOPPED}, IN_PROGRESS: {SUCCEEDED, FAILED, STOPPED}}
ALARM_DEFAULT = {"enabled": False, "ignorePollAlarmFailure": False, "alarms": []}  # what AWS answers when unset


class LocalApiError(RuntimeError):
    """The local-only action was refused (the message says why and what to do)."""


def update_deployment_status(deployment_id: str, status: str, *, error: dict[str, str] | None = None,
                             rollback: dict[str, str] | None = None, message: str | None = None) -> None:
    """Move a deployment's status in the local emulator (the local plane acts as CodeDeploy's engine)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    from common import aws

    codedeploy = aws.client("codedeploy")
    endpoint = codedeploy.meta.endpoint_url
    if not aws.is_local_endpoint(endpoint):
        raise LocalApiError(f"{LOCAL_ACTION} exists only in the local emulator, not at {endpoint}: on AWS, "
                            "CodeDeploy moves its deployments itself")
    body: dict[str, Any] = {"deploymentId": deployment_id, "status": status}
    body.update({k: v for k, v in (("errorInformation", error), ("rollbackInfo", rollback),
                                   ("statusMessage", message)) if v})
    request = AWSRequest(method="POST", url=endpoint + "/", data=json.dumps(body).encode(), headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{TARGET_PREFIX}.{LOCAL_ACTION}"})
    credentials = codedeploy._request_signer._credentials  # the client's own, as boto3 resolved them
    SigV4Auth(credentials, "codedeploy", codedeploy.meta.region_name).add_auth(request)
    prepared = request.prepare()
    http = codedeploy._endpoint.http_session
    answer = http.send(prepared)
    if answer.status_code != 200:
        raise LocalApiError(f"{LOCAL_ACTION} {deployment_id} -> {status}: HTTP {answer.status_code}: "
                            f"{answer.content.decode(errors='replace')[:300]}")


def patch_codedeploy() -> None:
    """In the emulator process: add the missing calls and the local action to moto's CodeDeploy."""
    from moto.codedeploy import responses

    original_group_info = responses._deployment_group_info
    original_deployment_info = responses._deployment_info
    original_parse = responses.CodeDeployResponse.parse_parameters

    def group_info(group: Any) -> dict[str, Any]:
        info: dict[str, Any] = original_group_info(group)
        info["alarmConfiguration"] = _alarm_configuration(group.alarm_configuration)
        info.update(_last_deployments(group))
        return info

    def deployment_info(deployment: Any) -> dict[str, Any]:
        info: dict[str, Any] = original_deployment_info(deployment)
        info["errorInformation"] = getattr(deployment, "local_error", None) or {}
        info["rollbackInfo"] = getattr(deployment, "local_rollback", None) or {}
        return info

    def parse_parameters(self: Any, request: Any) -> None:
        if self._get_action() == LOCAL_ACTION:  # not in botocore's model: the body is plain JSON
            self.params = json.loads(request.data or b"{}")
            return
        original_parse(self, request)

    responses._deployment_group_info = group_info  # type: ignore[assignment]
    responses._deployment_info = deployment_info
    cls: Any = responses.CodeDeployResponse
    cls.parse_parameters = parse_parameters
    cls.update_application = _update_application
    cls.delete_application = _delete_application
    cls.update_deployment_group = _update_deployment_group
    cls.delete_deployment_group = _delete_deployment_group
    cls.stop_deployment = _stop_deployment
    cls.local_update_deployment_status = _local_update_deployment_status


def _alarm_configuration(stored: Any) -> dict[str, Any]:
    if not isinstance(stored, dict):
        return dict(ALARM_DEFAULT)
    return {"enabled": bool(stored.get("enabled", False)),
            "ignorePollAlarmFailure": bool(stored.get("ignorePollAlarmFailure", False)),
            "alarms": [{"name": a["name"]} for a in stored.get("alarms") or [] if "name" in a]}


def _last_deployments(group: Any) -> dict[str, Any]:
    from moto.codedeploy.models import codedeploy_backends

    app = group.application
    backend = _backend_holding(codedeploy_backends, app)
    mine = [d for d in (backend.deployments.values() if backend else [])
            if d.deployment_group is group]
    mine.sort(key=lambda d: d.create_time)
    out: dict[str, Any] = {"lastAttemptedDeployment": {}, "lastSuccessfulDeployment": {}}
    succeeded = [d for d in mine if d.status == SUCCEEDED]
    for key, chosen in (("lastAttemptedDeployment", mine), ("lastSuccessfulDeployment", succeeded)):
        if chosen:
            last = chosen[-1]
            out[key] = {"deploymentId": last.deployment_id, "status": last.status, "createTime": last.create_time,
                        **({"endTime": last.complete_time} if last.complete_time else {})}
    return out


def _backend_holding(backends: Any, application: Any) -> Any:
    for account in backends.values():
        for backend in account.values():
            if backend.applications.get(application.application_name) is application:
                return backend
    return None


def _result(body: dict[str, Any]) -> Any:
    from moto.core.responses import ActionResult

    return ActionResult(body)


def _error(code: str, message: str) -> Exception:
    from moto.codedeploy.exceptions import CodeDeployException

    error = CodeDeployException(code, message)
    error.code = 400
    return error


def _update_application(self: Any) -> Any:
    backend = self.codedeploy_backend
    name, new = self._get_param("applicationName"), self._get_param("newApplicationName")
    app = backend.get_application(name)
    if new and new != name:
        if new in backend.applications:
            raise _error("ApplicationAlreadyExistsException", f"The application {new} already exists.")
        old_arn, new_arn = backend._application_arn(name), backend._application_arn(new)
        backend.applications[new] = backend.applications.pop(name)
        app.application_name = new
        if name in backend.deployment_groups:
            groups = backend.deployment_groups.pop(name)
            backend.deployment_groups[new] = groups
            for group_name in groups:
                _move_tags(backend, backend._deployment_group_arn(name, group_name),
                           backend._deployment_group_arn(new, group_name))
        _move_tags(backend, old_arn, new_arn)
        for deployment in backend.deployments.values():
            if deployment.application is app:
                deployment.application_name = new
    return _result({})


def _move_tags(backend: Any, old_arn: str, new_arn: str) -> None:
    tags = backend.tagger.list_tags_for_resource(old_arn)["Tags"]
    backend.tagger.delete_all_tags_for_resource(old_arn)
    if tags:
        backend.tagger.tag_resource(new_arn, tags)


def _delete_application(self: Any) -> Any:
    backend = self.codedeploy_backend
    name = self._get_param("applicationName")
    if backend.applications.pop(name, None) is not None:  # AWS: deleting what is gone succeeds
        for group_name in backend.deployment_groups.pop(name, {}):
            backend.tagger.delete_all_tags_for_resource(backend._deployment_group_arn(name, group_name))
        backend.tagger.delete_all_tags_for_resource(backend._application_arn(name))
    return _result({})


_GROUP_FIELDS = {  # UpdateDeploymentGroup parameter -> moto's attribute
    "deploymentConfigName": "deployment_config_name",
    "serviceRoleArn": "service_role_arn",
    "alarmConfiguration": "alarm_configuration",
    "autoRollbackConfiguration": "auto_rollback_configuration",
    "deploymentStyle": "deployment_style",
    "triggerConfigurations": "trigger_configurations",
    "blueGreenDeploymentConfiguration": "blue_green_deployment_configuration",
    "loadBalancerInfo": "load_balancer_info",
    "ecsServices": "ecs_services",
    "outdatedInstancesStrategy": "outdated_instances_strategy",
    "terminationHookEnabled": "termination_hook_enabled",
}


def _update_deployment_group(self: Any) -> Any:
    backend = self.codedeploy_backend
    app_name = self._get_param("applicationName")
    current = self._get_param("currentDeploymentGroupName")
    group = backend.get_deployment_group(app_name, current)
    for param, attribute in _GROUP_FIELDS.items():
        value = self._get_param(param)
        if value is not None:
            setattr(group, attribute, value)
    new = self._get_param("newDeploymentGroupName")
    if new and new != current:
        groups = backend.deployment_groups[app_name]
        if new in groups:
            raise _error("DeploymentGroupAlreadyExistsException", f"Deployment group {new} already exists.")
        groups[new] = groups.pop(current)
        group.deployment_group_name = new
        _move_tags(backend, backend._deployment_group_arn(app_name, current),
                   backend._deployment_group_arn(app_name, new))
    return _result({"hooksNotCleanedUp": []})


def _delete_deployment_group(self: Any) -> Any:
    backend = self.codedeploy_backend
    app_name, name = self._get_param("applicationName"), self._get_param("deploymentGroupName")
    if backend.deployment_groups.get(app_name, {}).pop(name, None) is not None:
        backend.tagger.delete_all_tags_for_resource(backend._deployment_group_arn(app_name, name))
    return _result({"hooksNotCleanedUp": []})


def _stop_deployment(self: Any) -> Any:
    """AWS stops the deployment; with autoRollbackEnabled the Lambda alias goes back (the local plane's job:
    it reads ``rollbackInfo``'s request and the Stopped status)."""
    deployment = self.codedeploy_backend.get_deployment(self._get_param("deploymentId"))
    if deployment.status in FINISHED:
        raise _error("DeploymentAlreadyCompletedException",
                     f"The deployment {deployment.deployment_id} has already completed.")
    rollback = bool(self._get_param("autoRollbackEnabled"))
    _move(deployment, STOPPED, error={"code": "DEPLOYMENT_STOPPED",
                                      "message": "The deployment was stopped by a user request."},
          message="Stopped by user request" + (" (rollback requested)" if rollback else ""))
    deployment.local_stop_rollback = rollback
    return _result({"status": "Succeeded", "statusMessage": "The deployment was stopped."})


def _local_update_deployment_status(self: Any) -> str:
    deployment = self.codedeploy_backend.get_deployment(self._get_param("deploymentId"))
    status = str(self._get_param("status"))
    allowed = _MOVES.get(deployment.status, set())
    if status not in allowed:
        raise _error("InvalidDeploymentStatusException",
                     f"deployment {deployment.deployment_id} is {deployment.status}: it can move to "
                     f"{', '.join(sorted(allowed)) or 'nothing (finished)'}, not {status}")
    _move(deployment, status, error=self._get_param("errorInformation"),
          rollback=self._get_param("rollbackInfo"), message=self._get_param("statusMessage"))
    return json.dumps({"status": deployment.status})


def _move(deployment: Any, status: str, *, error: Any = None, rollback: Any = None, message: Any = None) -> None:
    from moto.core.utils import utcnow

    deployment.status = status
    if status == IN_PROGRESS and deployment.start_time is None:
        deployment.start_time = utcnow()
    if status in FINISHED:
        deployment.complete_time = utcnow()
    if error:
        deployment.local_error = dict(error)
    if rollback:
        deployment.local_rollback = dict(rollback)
    if message:
        deployment.deployment_status_messages.append(str(message))
