//! Readiness of the services behind the gateway: each one's `/healthz` answers 200.
//!
//! The probe speaks minimal HTTP/1.1 over a tokio socket because readiness futures must be
//! `Send`, which `awc`'s are not.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use custodian_telemetry::{health::ProbeFuture, ReadinessProbe};

use crate::{configuration::UpstreamUrl, routing::Upstream};

pub struct UpstreamProbe {
    pub upstream: Upstream,
    pub url: UpstreamUrl,
}

impl ReadinessProbe for UpstreamProbe {
    fn name(&self) -> &'static str {
        self.upstream.name()
    }

    fn check(&self) -> ProbeFuture {
        let authority = self.url.authority().to_string();
        Box::pin(async move {
            let mut stream = tokio::net::TcpStream::connect(&authority)
                .await
                .map_err(|e| e.to_string())?;
            let request =
                format!("GET /healthz HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
            stream
                .write_all(request.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let mut head = [0u8; 32];
            let mut read = 0;
            while read < 12 {
                let n = stream
                    .read(&mut head[read..])
                    .await
                    .map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                read += n;
            }
            let status_line = String::from_utf8_lossy(&head[..read]);
            match status_line.split_whitespace().nth(1) {
                Some("200") => Ok(()),
                Some(status) => Err(format!("/healthz answered {status}")),
                None => Err("/healthz gave no HTTP answer".to_string()),
            }
        })
    }
}
