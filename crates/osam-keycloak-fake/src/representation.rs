//! Keycloak's JSON representations (the admin API's `UserRepresentation`,
//! `RoleRepresentation`, `GroupRepresentation`, `ClientRepresentation`) built from the realm.
//! Like Keycloak, absent values are omitted rather than sent as null.

use serde_json::{Map, Value, json};

use crate::model::{RealmState, RoleRef, StoredClient, StoredGroup, StoredUser};

pub(crate) fn user(user: &StoredUser, brief: bool) -> Value {
    let mut object = Map::new();
    object.insert("id".to_owned(), json!(user.id));
    object.insert("username".to_owned(), json!(user.username));
    insert_optional(&mut object, "firstName", user.first_name.as_deref());
    insert_optional(&mut object, "lastName", user.last_name.as_deref());
    insert_optional(&mut object, "email", user.email.as_deref());
    object.insert("emailVerified".to_owned(), json!(user.email_verified));
    object.insert(
        "createdTimestamp".to_owned(),
        json!(user.created_timestamp_millis),
    );
    object.insert("enabled".to_owned(), json!(user.enabled));
    if !brief {
        if !user.attributes.is_empty() {
            object.insert("attributes".to_owned(), json!(user.attributes));
        }
        object.insert("totp".to_owned(), json!(false));
        object.insert("disableableCredentialTypes".to_owned(), json!([]));
        object.insert("requiredActions".to_owned(), json!([]));
        object.insert("notBefore".to_owned(), json!(0));
        object.insert(
            "access".to_owned(),
            json!({
                "manageGroupMembership": true,
                "view": true,
                "mapRoles": true,
                "impersonate": true,
                "manage": true,
            }),
        );
    }
    Value::Object(object)
}

pub(crate) fn role(state: &RealmState, role: &RoleRef) -> Option<Value> {
    let (stored, container_id) = state.role_with_container(role)?;
    let mut object = Map::new();
    object.insert("id".to_owned(), json!(stored.id));
    object.insert("name".to_owned(), json!(stored.name));
    insert_optional(&mut object, "description", stored.description.as_deref());
    object.insert("composite".to_owned(), json!(!stored.composites.is_empty()));
    object.insert(
        "clientRole".to_owned(),
        json!(matches!(role, RoleRef::Client { .. })),
    );
    object.insert("containerId".to_owned(), json!(container_id));
    Some(Value::Object(object))
}

pub(crate) fn group(state: &RealmState, group: &StoredGroup, brief: bool) -> Value {
    let mut object = Map::new();
    object.insert("id".to_owned(), json!(group.id));
    object.insert("name".to_owned(), json!(group.name));
    object.insert("path".to_owned(), json!(state.group_path(&group.id)));
    insert_optional(&mut object, "parentId", group.parent_id.as_deref());
    object.insert("subGroupCount".to_owned(), json!(state.subgroup_count(&group.id)));
    object.insert("subGroups".to_owned(), json!([]));
    if !brief {
        object.insert("attributes".to_owned(), json!({}));
        object.insert("realmRoles".to_owned(), json!(group.realm_roles));
        object.insert("clientRoles".to_owned(), json!({}));
    }
    object.insert(
        "access".to_owned(),
        json!({"view": true, "viewMembers": true, "manageMembers": true, "manage": true, "manageMembership": true}),
    );
    Value::Object(object)
}

pub(crate) fn client(client: &StoredClient) -> Value {
    let is_service_client = client.secret.is_some();
    json!({
        "id": client.id,
        "clientId": client.client_id,
        "name": client.client_id,
        "enabled": true,
        "protocol": "openid-connect",
        "clientAuthenticatorType": "client-secret",
        "publicClient": !is_service_client,
        "bearerOnly": false,
        "serviceAccountsEnabled": is_service_client,
        "standardFlowEnabled": !is_service_client,
        "directAccessGrantsEnabled": false,
        "fullScopeAllowed": true,
        "attributes": {},
        "access": {"view": true, "configure": true, "manage": true},
    })
}

fn insert_optional(object: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(value) = value {
        object.insert(key.to_owned(), json!(value));
    }
}
