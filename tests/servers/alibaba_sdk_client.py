"""Drives the fake Alibaba API server (alibaba-api-server.ts) with Alibaba's official Python SDKs.

Run with the interpreter of tests/harness/alibaba-sdk-python.ts (alibabacloud-ims20190815 3.5.0,
alibabacloud-openapiexplorer20241130 1.2.0, alibabacloud-tea-openapi 0.4.6):

    python alibaba_sdk_client.py < request.json

The request names the server ({"endpoint": "127.0.0.1:<port>", "accessKeyId", "accessKeySecret"}), a `phase`
and its values. Each call goes through the SDK's own request model, query/body building, signing and response
model, over http to the loopback endpoint (Config.protocol "http": the SDK's models say HTTPS, the config wins).
Prints one JSON object with what the SDK parsed from the answers; any failed call raises (exit status 1, the
SDK's error on stderr).

  phase "create": CreateApplication, GetApplication, UpdateApplication, ListAppSecretIds, CreateAppSecret,
                  ListAppSecretIds, CreateApiMcpServer, GetApiMcpServer, ListApiMcpServers
  phase "delete": DeleteApiMcpServer, DeleteApplication
"""

from __future__ import annotations

import json
import sys

from alibabacloud_ims20190815 import models as ims_models
from alibabacloud_ims20190815.client import Client as ImsClient
from alibabacloud_openapiexplorer20241130 import models as mcp_models
from alibabacloud_openapiexplorer20241130.client import Client as McpClient
from alibabacloud_tea_openapi import utils_models as open_api_models


def clients(request: dict) -> tuple[ImsClient, McpClient]:
    def config() -> open_api_models.Config:
        return open_api_models.Config(
            access_key_id=request["accessKeyId"],
            access_key_secret=request["accessKeySecret"],
            endpoint=request["endpoint"],
            protocol="http",
            region_id="cn-hangzhou",
        )

    return ImsClient(config()), McpClient(config())


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


def main() -> None:
    request = json.load(sys.stdin)
    ims, mcp = clients(request)
    phases = {"create": create, "delete": delete}
    json.dump(phases[request["phase"]](ims, mcp, request), sys.stdout)


if __name__ == "__main__":
    main()
