//! OpenAPI pieces every service's document shares: the OAuth2 (SMART on FHIR) security scheme
//! that authenticated operations name (`security(("smart" = []))`), and [`finish`], which every
//! service's `openapi()` applies so that the merged document (`openapi/openapi.json`) has
//! unique operation ids.

use utoipa::openapi::{
    path::Operation,
    security::{ClientCredentials, Flow, OAuth2, Password, Scopes, SecurityScheme},
    OpenApi, PathItem,
};

/// The name of the security scheme authenticated operations require.
pub const SMART: &str = "smart";

/// Where tokens are issued, relative to the gateway (the document's server).
pub const TOKEN_URL: &str = "/auth/token";

/// The `smart` scheme: OAuth2 with the two grants identity serves at [`TOKEN_URL`] (`password`
/// for people, `client_credentials` for backend systems; there is no authorization endpoint, so
/// no authorization-code flow), with `scopes` (name, description) as the ones a client may ask
/// for. The token is sent as `Authorization: Bearer <JWT>`.
pub fn smart_scheme(scopes: impl IntoIterator<Item = (String, String)>) -> SecurityScheme {
    let scopes: Scopes = scopes.into_iter().collect();
    SecurityScheme::OAuth2(OAuth2::with_description(
        [
            Flow::Password(Password::new(TOKEN_URL, scopes.clone())),
            Flow::ClientCredentials(ClientCredentials::new(TOKEN_URL, scopes)),
        ],
        "SMART on FHIR scopes on ES256 JWTs issued by identity (POST /auth/token; discovery at \
         /.well-known/smart-configuration), sent as `Authorization: Bearer <token>`. Scopes only \
         narrow: consent and the custodian rule still decide what each request may see. A \
         narrower scope than a listed one is accepted too (one resource type instead of `*`, \
         fewer of the `cruds` letters, or the v1 `read`/`write`), as long as the user's role may \
         hold it; `?`-filtered scopes are refused.",
    ))
}

/// What a SMART scope grants, in words (for the scheme's scope list).
pub fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => return "OpenID Connect sign-in (grants no data)".into(),
        "fhirUser" => return "The token names the user's FHIR resource (grants no data)".into(),
        "launch/patient" => {
            return "The token carries the patient context (`patient` claim; grants no data)".into()
        }
        "offline_access" => return "Accepted for SMART clients; grants no data".into(),
        _ => {}
    }
    let Some((context, rest)) = scope.split_once('/') else {
        return scope.to_string();
    };
    let Some((resource, permissions)) = rest.rsplit_once('.') else {
        return scope.to_string();
    };
    let whose = match context {
        "patient" => "in the token's patient compartment",
        "user" => "that the user may see",
        "system" => "that the client's organisation may see",
        _ => "",
    };
    let what = if resource == "*" {
        "resources of every type".to_string()
    } else {
        format!("{resource} resources")
    };
    let verbs: Vec<&str> = match permissions {
        "read" => vec!["read", "search"],
        "write" => vec!["create", "update", "delete"],
        "*" => vec!["create", "read", "update", "delete", "search"],
        letters => letters
            .chars()
            .filter_map(|c| match c {
                'c' => Some("create"),
                'r' => Some("read"),
                'u' => Some("update"),
                'd' => Some("delete"),
                's' => Some("search"),
                _ => None,
            })
            .collect(),
    };
    format!("{} {what} {whose}", capitalise(&verbs.join(", ")))
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Every operation of a path item.
pub fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
        &mut item.query,
    ]
    .into_iter()
    .flatten()
}

/// Applied by every service's `openapi()`: operation ids become `<service>_<handler>`, unique in
/// the merged document as long as they are within the service (a test of the merged document
/// checks both).
pub fn finish(document: &mut OpenApi, service: &str) {
    for item in document.paths.paths.values_mut() {
        for operation in operations_mut(item) {
            if let Some(id) = operation.operation_id.as_mut() {
                if !id.starts_with(&format!("{service}_")) {
                    *id = format!("{service}_{id}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_described() {
        assert_eq!(
            describe_scope("patient/*.rs"),
            "Read, search resources of every type in the token's patient compartment"
        );
        assert_eq!(
            describe_scope("user/Observation.write"),
            "Create, update, delete Observation resources that the user may see"
        );
        assert!(describe_scope("openid").contains("no data"));
    }

    #[test]
    fn operation_ids_are_prefixed_once() {
        let mut doc: OpenApi = serde_json::from_str(
            r#"{"openapi":"3.1.0","info":{"title":"t","version":"1"},"paths":{
                "/a":{"get":{"operationId":"read","responses":{}},
                      "post":{"operationId":"x_create","responses":{}}}}}"#,
        )
        .unwrap();
        finish(&mut doc, "x");
        let item = &doc.paths.paths["/a"];
        assert_eq!(
            item.get.as_ref().unwrap().operation_id.as_deref(),
            Some("x_read")
        );
        assert_eq!(
            item.post.as_ref().unwrap().operation_id.as_deref(),
            Some("x_create")
        );
    }
}
