//! A client for the gateway.

use std::time::Duration;

use awc::http::Method;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
}

impl Response {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Ok(self)` when the status is the expected one, otherwise an error carrying the body.
    pub fn expect_status(self, status: u16) -> Result<Self, ApiError> {
        if self.status == status {
            Ok(self)
        } else {
            Err(ApiError::Status {
                expected: status,
                got: self.status,
                body: self.text,
            })
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("request failed: {0}")]
    Transport(String),
    #[error("expected HTTP {expected}, got {got}: {body}")]
    Status {
        expected: u16,
        got: u16,
        body: String,
    },
    #[error("unexpected answer: {0}")]
    Unexpected(String),
}

#[derive(Clone)]
pub struct Gateway {
    base: String,
    client: awc::Client,
}

impl Gateway {
    pub fn new(base: impl Into<String>) -> Self {
        // Idle connections are dropped before the gateway's keep-alive (actix-web's 5 s)
        // closes them: reusing one it is closing fails the request ("connector has been
        // disconnected"), as `load` did on the first request after a pause.
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .connector(awc::Connector::new().conn_keep_alive(Duration::from_secs(4)))
            .finish();
        Self {
            base: base.into().trim_end_matches('/').to_string(),
            client,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// One request. `body` is sent as JSON with the FHIR media type.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Response, ApiError> {
        let mut request = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(token) = token {
            request = request.insert_header(("Authorization", format!("Bearer {token}")));
        }
        for (k, v) in headers {
            request = request.insert_header((*k, *v));
        }
        let sent = match body {
            Some(body) => {
                request
                    .insert_header(("Content-Type", "application/fhir+json"))
                    .send_body(body.to_string())
                    .await
            }
            None => request.send().await,
        };
        let mut response = sent.map_err(|e| ApiError::Transport(e.to_string()))?;
        let bytes = response
            .body()
            .limit(64 << 20)
            .await
            .map_err(|e| ApiError::Transport(e.to_string()))?;
        Ok(Response {
            status: response.status().as_u16(),
            headers: response
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                .collect(),
            text: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Result<Response, ApiError> {
        self.send(Method::GET, path, token, &[], None).await
    }

    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<Response, ApiError> {
        self.send(Method::POST, path, token, &[], Some(body)).await
    }

    pub async fn put(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<Response, ApiError> {
        self.send(Method::PUT, path, token, &[], Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Result<Response, ApiError> {
        self.send(Method::DELETE, path, token, &[], None).await
    }

    /// OAuth2 token request with form fields.
    pub async fn token(&self, form: &[(&str, &str)]) -> Result<Response, ApiError> {
        self.token_with(form, &[]).await
    }

    /// [`Gateway::token`] with extra headers (an `X-Request-Id`, say).
    pub async fn token_with(
        &self,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<Response, ApiError> {
        let mut request = self.client.post(format!("{}/auth/token", self.base));
        for (k, v) in headers {
            request = request.insert_header((*k, *v));
        }
        let mut response = request
            .send_form(&form)
            .await
            .map_err(|e| ApiError::Transport(e.to_string()))?;
        let bytes = response
            .body()
            .await
            .map_err(|e| ApiError::Transport(e.to_string()))?;
        Ok(Response {
            status: response.status().as_u16(),
            headers: vec![],
            text: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    /// A password-grant access token.
    pub async fn login(&self, username: &str, password: &str) -> Result<String, ApiError> {
        let response = self
            .token(&[
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
            ])
            .await?
            .expect_status(200)?;
        response.json()["access_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ApiError::Unexpected(format!("no access_token in {}", response.text)))
    }
}
