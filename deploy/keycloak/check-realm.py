#!/usr/bin/env python3
"""Checks that realm-export.json gives osam what its defaults expect (no Keycloak needed): the role
names of osam's scope table, the claims of auth.role_claims / groups_claim / username_claim and the
`osam` audience on every client that calls osam, the admin roles of osam's service account, and that
every role, group and client the export refers to is defined in it."""

import json
import sys
from pathlib import Path

realm = json.loads((Path(__file__).parent / "realm-export.json").read_text())
problems = []


def expect(condition, message):
    if not condition:
        problems.append(message)


realm_roles = {role["name"]: role for role in realm["roles"]["realm"]}
client_roles = {client: {role["name"] for role in roles} for client, roles in realm["roles"]["client"].items()}
clients = {client["clientId"]: client for client in realm["clients"]}

for role in ["rs_osam_update", "rs_osam_read", "rs_osam_catalog_service", "rs_osam_impersonate"]:
    expect(role in realm_roles, f"realm role {role} (osam's default scope table) is missing")
for role in realm_roles.values():
    for composite in role.get("composites", {}).get("realm", []):
        expect(composite in realm_roles, f"composite {role['name']} refers to unknown role {composite}")
expect(realm["defaultRole"]["name"] in realm_roles, "the default role is not defined")


def group_paths(groups):
    for group in groups:
        yield group["path"], group
        yield from group_paths(group.get("subGroups", []))


groups = dict(group_paths(realm["groups"]))
for path, group in groups.items():
    for role in group.get("realmRoles", []):
        expect(role in realm_roles, f"group {path} maps unknown role {role}")

callers = [client for client in clients.values() if client.get("protocolMappers")]
expect({"osam-cli", "catalog-service", "notebook-app"} <= {client["clientId"] for client in callers},
       "the clients that call osam must carry osam's protocol mappers")
for client in callers:
    by_type = {mapper["protocolMapper"]: mapper["config"] for mapper in client["protocolMappers"]}
    name = client["clientId"]
    expect(by_type.get("oidc-usermodel-realm-role-mapper", {}).get("claim.name") == "realm_access.roles",
           f"{name}: realm roles must be in realm_access.roles")
    expect(by_type.get("oidc-usermodel-client-role-mapper", {}).get("claim.name")
           == "resource_access.${client_id}.roles", f"{name}: client roles must be in resource_access")
    groups_mapper = by_type.get("oidc-group-membership-mapper", {})
    expect(groups_mapper.get("claim.name") == "groups" and groups_mapper.get("full.path") == "true",
           f"{name}: full group paths must be in groups")
    expect(by_type.get("oidc-audience-mapper", {}).get("included.client.audience") == "osam",
           f"{name}: the access token's aud must include osam")
    expect(by_type.get("oidc-usermodel-attribute-mapper", {}).get("claim.name") == "preferred_username",
           f"{name}: preferred_username must be mapped")
    for config in by_type.values():
        expect(config.get("access.token.claim") == "true", f"{name}: a mapper leaves the access token out")

osam = clients["osam"]
expect(osam["serviceAccountsEnabled"] and not osam["standardFlowEnabled"] and not osam["publicClient"],
       "osam must be a confidential service-account client without the standard flow")
expect("REGENERATE" in osam["secret"], "the osam secret must be an obvious development placeholder")

users = {user["username"]: user for user in realm["users"]}
service_account = next(user for user in users.values() if user.get("serviceAccountClientId") == "osam")
expect({"view-users", "query-users", "manage-users"}
       <= set(service_account["clientRoles"]["realm-management"]),
       "osam's service account needs realm-management view-users, query-users and manage-users")
for user in users.values():
    for role in user.get("realmRoles", []):
        expect(role in realm_roles, f"user {user['username']} has unknown realm role {role}")
    for client, roles in user.get("clientRoles", {}).items():
        if client != "realm-management":
            expect(client in clients and set(roles) <= client_roles.get(client, set()),
                   f"user {user['username']} has unknown client roles {client}: {roles}")
    for path in user.get("groups", []):
        expect(path in groups, f"user {user['username']} is in unknown group {path}")
    if user.get("serviceAccountClientId"):
        expect(user["serviceAccountClientId"] in clients, f"{user['username']}: unknown client")

if problems:
    print("realm-export.json:", *problems, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"realm-export.json: {len(realm_roles)} realm roles, {len(groups)} groups, {len(clients)} clients, "
      f"{len(users)} users: consistent")
