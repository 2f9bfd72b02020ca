//! Client credentials from HTTP Basic (RFC 6749 §2.3.1) or the form body.

use actix_web::{http::header, HttpRequest};
use base64::Engine as _;

use crate::error::OAuthError;

pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: String,
    /// Sent with HTTP Basic (a failure must then answer with a Basic challenge).
    pub basic: bool,
}

/// Reverses `application/x-www-form-urlencoded` encoding, which RFC 6749 applies to the id and
/// secret before Basic encoding. `None` on malformed escapes.
fn form_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                out.push(value);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn from_basic(req: &HttpRequest) -> Result<Option<ClientCredentials>, OAuthError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| OAuthError::InvalidClient { basic: true })?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or(OAuthError::InvalidClient { basic: true })?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or(OAuthError::InvalidClient { basic: true })?;
    let client_id = form_decode(id).ok_or(OAuthError::InvalidClient { basic: true })?;
    let client_secret = form_decode(secret).ok_or(OAuthError::InvalidClient { basic: true })?;
    Ok(Some(ClientCredentials {
        client_id,
        client_secret,
        basic: true,
    }))
}

/// The client's credentials; a client must use exactly one method (RFC 6749 §2.3).
pub fn client_credentials(
    req: &HttpRequest,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<ClientCredentials, OAuthError> {
    let basic = from_basic(req)?;
    match (basic, form_id, form_secret) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(OAuthError::InvalidRequest(
            "send client credentials either with HTTP Basic or in the body, not both".into(),
        )),
        (Some(creds), None, None) => Ok(creds),
        (None, Some(id), Some(secret)) => Ok(ClientCredentials {
            client_id: id.to_string(),
            client_secret: secret.to_string(),
            basic: false,
        }),
        (None, _, _) => Err(OAuthError::InvalidClient { basic: false }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn decodes_form_escapes() {
        assert_eq!(form_decode("a%3Ab+c").unwrap(), "a:b c");
        assert!(form_decode("a%3").is_none());
        assert!(form_decode("%zz").is_none());
    }

    #[test]
    fn basic_credentials() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("client-1:s%3Acret");
        let req = TestRequest::default()
            .insert_header((header::AUTHORIZATION, format!("Basic {encoded}")))
            .to_http_request();
        let creds = client_credentials(&req, None, None).unwrap();
        assert_eq!(creds.client_id, "client-1");
        assert_eq!(creds.client_secret, "s:cret");
        assert!(creds.basic);
        assert!(matches!(
            client_credentials(&req, Some("client-1"), None),
            Err(OAuthError::InvalidRequest(_))
        ));
    }

    #[test]
    fn form_credentials_and_missing_ones() {
        let req = TestRequest::default().to_http_request();
        assert!(
            !client_credentials(&req, Some("a"), Some("b"))
                .unwrap()
                .basic
        );
        assert!(matches!(
            client_credentials(&req, Some("a"), None),
            Err(OAuthError::InvalidClient { basic: false })
        ));
    }
}
