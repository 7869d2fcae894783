"""Drives the fake Alibaba API server (alibaba-api-server.ts) with Alibaba's official Python SDKs.

Run with the interpreter of tests/harness/alibaba-sdk-python.ts (alibabacloud-ims20190815 3.5.0,
alibabacloud-openapiexplorer20241130 1.2.0, alibabacloud-ecs20140526 7.11.8, alibabacloud-tea-openapi 0.4.6):

    python alibaba_sdk_client.py < request.json

The request names the server ({"endpoint": "127.0.0.1:<port>", "accessKeyId", "accessKeySecret"}), a `phase`
and its values. Each call goes through the SDK's own request model, query/body building, signing and response
model, over http to the loopback endpoint (Config.protocol "http": the SDK's models say HTTPS, the config wins).
Prints one JSON object with what the SDK parsed from the answers; any failed call raises (exit status 1, the
SDK's error on stderr).

  phase "create": CreateApplication, GetApplication, UpdateApplication, ListAppSecretIds, CreateAppSecret,
                  ListAppSecretIds, CreateApiMcpServer, GetApiMcpServer, ListApiMcpServers
  phase "delete": DeleteApiMcpServer, DeleteApplication
  phase "cloud-assistant": DescribeCloudAssistantStatus, RunCommand (the script Base64-encoded, ContentEncoding
                  Base64), DescribeInvocationResults (the SDK's default encoding, Base64) until the run is over,
                  then once more with ContentEncoding PlainText
  phase "snapshots": CreateSnapshot (DiskId, SnapshotName, Description, RetentionDays, ClientToken), the same again
                  (its ClientToken: the same snapshot), DescribeSnapshots (RegionId, SnapshotIds as the JSON array the
                  model documents) until the snapshot is no longer progressing, and CreateSnapshot of an unknown disk
                  (its error code, as the SDK raised it)
"""

from __future__ import annotations

import base64
import json
import sys
import time

from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_ims20190815 import models as ims_models
from alibabacloud_ims20190815.client import Client as ImsClient
from alibabacloud_openapiexplorer20241130 import models as mcp_models
from alibabacloud_openapiexplorer20241130.client import Client as McpClient
from alibabacloud_tea_openapi import utils_models as open_api_models
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException


def config(request: dict) -> open_api_models.Config:
    return open_api_models.Config(
        access_key_id=request["accessKeyId"],
        access_key_secret=request["accessKeySecret"],
        endpoint=request["endpoint"],
        protocol="http",
        region_id=request.get("regionId", "cn-hangzhou"),
    )


def clients(request: dict) -> tuple[ImsClient, McpClient]:
    return ImsClient(config(request)), McpClient(config(request))


def create(ims: ImsClient, mcp: McpClient, request: dict) -> dict:
    app = request["app"]
    created = ims.create_application(
        ims_models.CreateApplicationRequest(
            app_name=app["appName"],
            app_type="NativeApp",
            display_name=app["displayName"],
            is_multi_tenant=False,
            secret_required=True,
            protocol_version="2.1",
            predefined_scopes=";".join(app["scopes"]),
            required_scopes=";".join(app["requiredScopes"]),
            redirect_uris=";".join(app["redirectUris"]),
            access_token_validity=app["accessTokenValidity"],
        )
    ).body.application
    app_id = created.app_id
    fetched = ims.get_application(ims_models.GetApplicationRequest(app_id=app_id)).body.application
    updated = ims.update_application(
        ims_models.UpdateApplicationRequest(
            app_id=app_id,
            new_display_name=app["newDisplayName"],
            new_is_multi_tenant=False,
        )
    ).body.application
    secrets_before = ims.list_app_secret_ids(ims_models.ListAppSecretIdsRequest(app_id=app_id)).body.app_secrets.app_secret
    secret = ims.create_app_secret(ims_models.CreateAppSecretRequest(app_id=app_id)).body.app_secret
    secrets_after = ims.list_app_secret_ids(ims_models.ListAppSecretIdsRequest(app_id=app_id)).body.app_secrets.app_secret

    server = request["mcpServer"]
    mcp_created = mcp.create_api_mcp_server(
        mcp_models.CreateApiMcpServerRequest(
            name=server["name"],
            description=server["description"],
            oauth_client_id=app_id,
            apis=[
                mcp_models.CreateApiMcpServerRequestApis(product=api["product"], api_version=api["apiVersion"], selectors=api["selectors"])
                for api in server["apis"]
            ],
            enable_assume_role=False,
            client_token=server["clientToken"],
        )
    ).body
    mcp_fetched = mcp.get_api_mcp_server(mcp_models.GetApiMcpServerRequest(id=mcp_created.id)).body
    listed = mcp.list_api_mcp_servers(mcp_models.ListApiMcpServersRequest(keyword=server["keyword"], max_results=10)).body

    return {
        "appId": app_id,
        "created": {"displayName": created.display_name, "isMultiTenant": created.is_multi_tenant, "secretRequired": created.secret_required},
        "fetched": {
            "displayName": fetched.display_name,
            "isMultiTenant": fetched.is_multi_tenant,
            "secretRequired": fetched.secret_required,
            "protocolVersion": fetched.protocol_version,
            "redirectUris": fetched.redirect_uris.redirect_uri,
        },
        "updated": {"displayName": updated.display_name, "isMultiTenant": updated.is_multi_tenant},
        "secretIdsBefore": [item.app_secret_id for item in secrets_before or []],
        "secret": {"id": secret.app_secret_id, "hasValue": bool(secret.app_secret_value)},
        "secretIdsAfter": [item.app_secret_id for item in secrets_after or []],
        "mcpServer": {
            "id": mcp_created.id,
            "mcpUrl": mcp_created.urls.mcp,
            "name": mcp_fetched.name,
            "description": mcp_fetched.description,
            "oauthClientId": mcp_fetched.oauth_client_id,
            "selectors": [selector for api in mcp_fetched.apis for selector in api.selectors],
        },
        "listedServerIds": [item.id for item in listed.api_mcp_servers or []],
    }


def delete(ims: ImsClient, mcp: McpClient, request: dict) -> dict:
    mcp.delete_api_mcp_server(mcp_models.DeleteApiMcpServerRequest(id=request["mcpServerId"], client_token=request["clientToken"]))
    ims.delete_application(ims_models.DeleteApplicationRequest(app_id=request["appId"]))
    return {"deleted": True}


def invocation_result(item: ecs_models.DescribeInvocationResultsResponseBodyInvocationInvocationResultsInvocationResult) -> dict:
    return {
        "invocationStatus": item.invocation_status,
        "invokeRecordStatus": item.invoke_record_status,
        "exitCode": item.exit_code,
        "output": item.output,
        "errorCode": item.error_code,
        "dropped": item.dropped,
        "instanceId": item.instance_id,
        "invokeId": item.invoke_id,
        "commandId": item.command_id,
    }


def cloud_assistant(request: dict) -> dict:
    ecs = EcsClient(config(request))
    region_id = request["regionId"]
    instance_id = request["instanceId"]

    status = ecs.describe_cloud_assistant_status(
        ecs_models.DescribeCloudAssistantStatusRequest(region_id=region_id, instance_id=[instance_id])
    ).body
    agent = status.instance_cloud_assistant_status_set.instance_cloud_assistant_status[0]

    started = ecs.run_command(
        ecs_models.RunCommandRequest(
            region_id=region_id,
            type="RunShellScript",
            command_content=base64.b64encode(request["script"].encode("utf-8")).decode("ascii"),
            content_encoding="Base64",
            instance_id=[instance_id],
            timeout=request["timeout"],
            name=request["name"],
            keep_command=False,
        )
    ).body

    polls = 0
    deadline = time.monotonic() + 30
    while True:
        polls += 1
        answer = ecs.describe_invocation_results(
            ecs_models.DescribeInvocationResultsRequest(region_id=region_id, invoke_id=started.invoke_id, instance_id=instance_id)
        ).body
        results = answer.invocation.invocation_results.invocation_result or []
        if results and results[0].invocation_status not in ("Pending", "Running", "Stopping"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"no result for {started.invoke_id} after 30 s")
        time.sleep(0.05)
    plain = ecs.describe_invocation_results(
        ecs_models.DescribeInvocationResultsRequest(
            region_id=region_id, invoke_id=started.invoke_id, instance_id=instance_id, content_encoding="PlainText"
        )
    ).body.invocation.invocation_results.invocation_result[0]

    final = invocation_result(results[0])
    return {
        "agent": {
            "instanceId": agent.instance_id,
            "cloudAssistantStatus": agent.cloud_assistant_status,
            "cloudAssistantVersion": agent.cloud_assistant_version,
            "lastHeartbeatTime": agent.last_heartbeat_time,
            "osType": agent.ostype,
            "totalCount": status.total_count,
        },
        "started": {"invokeId": started.invoke_id, "commandId": started.command_id},
        "polls": polls,
        "result": final,
        "decodedOutput": base64.b64decode(final["output"]).decode("utf-8"),
        "totalCount": answer.invocation.total_count,
        "plainTextOutput": plain.output,
    }


def snapshots(request: dict) -> dict:
    ecs = EcsClient(config(request))
    create = ecs_models.CreateSnapshotRequest(
        disk_id=request["diskId"],
        snapshot_name=request["snapshotName"],
        description=request["description"],
        retention_days=request["retentionDays"],
        client_token=request["clientToken"],
    )
    created = ecs.create_snapshot(create).body
    repeated = ecs.create_snapshot(create).body

    polls = 0
    deadline = time.monotonic() + 30
    while True:
        polls += 1
        answer = ecs.describe_snapshots(
            ecs_models.DescribeSnapshotsRequest(region_id=request["regionId"], snapshot_ids=json.dumps([created.snapshot_id]))
        ).body
        listed = answer.snapshots.snapshot or []
        if listed and listed[0].status != "progressing":
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"snapshot {created.snapshot_id} still progressing after 30 s")
        time.sleep(0.05)
    item = listed[0]

    try:
        ecs.create_snapshot(ecs_models.CreateSnapshotRequest(disk_id="d-doesnotexist", snapshot_name="dify-check"))
        unknown = {"code": None}
    except AlibabaCloudException as error:
        unknown = {"code": error.code, "statusCode": error.status_code}

    return {
        "snapshotId": created.snapshot_id,
        "repeatedSnapshotId": repeated.snapshot_id,
        "polls": polls,
        "totalCount": answer.total_count,
        "snapshot": {
            "snapshotId": item.snapshot_id,
            "snapshotName": item.snapshot_name,
            "description": item.description,
            "status": item.status,
            "progress": item.progress,
            "sourceDiskId": item.source_disk_id,
            "retentionDays": item.retention_days,
            "available": item.available,
        },
        "unknownDisk": unknown,
    }


def main() -> None:
    request = json.load(sys.stdin)
    if request["phase"] == "cloud-assistant":
        json.dump(cloud_assistant(request), sys.stdout)
        return
    if request["phase"] == "snapshots":
        json.dump(snapshots(request), sys.stdout)
        return
    ims, mcp = clients(request)
    phases = {"create": create, "delete": delete}
    json.dump(phases[request["phase"]](ims, mcp, request), sys.stdout)


if __name__ == "__main__":
    main()
