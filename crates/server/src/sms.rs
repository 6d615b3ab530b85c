//! SMS through an HTTP gateway (`--sms-gateway URL`, env `KLUIS_SMS_GATEWAY`, with an optional
//! bearer token in `KLUIS_SMS_TOKEN`): one `POST` of `{"to": "+31612345678", "text": "…"}` as
//! JSON per message, answered with any 2xx. SMS providers take requests of this shape, or a
//! small relay in front of one does. The gateway must be HTTPS, unless it runs on this machine
//! (a loopback address), so that no code crosses a network in the clear.
//!
//! A message never holds a client's name or anything from a record (the server has none).

use std::time::Duration;

use zeroize::Zeroizing;

/// How long one request to the gateway may take.
pub const SMS_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest text sent (one SMS of GSM-7 characters).
pub const MAX_SMS_CHARS: usize = 160;

/// What can go wrong with SMS.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// The gateway setting is not usable.
    #[error("SMS gateway setting: {0}")]
    Setting(String),
    /// The gateway could not be reached or refused the message (its status, never the text).
    #[error("the SMS gateway failed: {0}")]
    Send(String),
}

/// The configured gateway.
pub struct SmsGateway {
    client: reqwest::Client,
    url: reqwest::Url,
    token: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for SmsGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret; the URL's path may be too.
        f.debug_struct("SmsGateway").field("host", &self.url.host_str()).finish_non_exhaustive()
    }
}

impl SmsGateway {
    /// A gateway at `url` (HTTPS, or HTTP on a loopback address), with an optional bearer token.
    pub fn new(url: &str, token: Option<String>) -> Result<Self, SmsError> {
        let url = reqwest::Url::parse(url).map_err(|e| SmsError::Setting(format!("the gateway URL: {e}")))?;
        match url.scheme() {
            "https" => {}
            "http" if crate::mail::is_loopback_host(&url) => {}
            _ => return Err(SmsError::Setting("the gateway must be https:// (http:// only on this machine)".into())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(SmsError::Setting("put the gateway's credential in KLUIS_SMS_TOKEN, not in the URL".into()));
        }
        let client = reqwest::Client::builder()
            .timeout(SMS_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SmsError::Setting(e.to_string()))?;
        Ok(SmsGateway { client, url, token: token.filter(|t| !t.is_empty()).map(Zeroizing::new) })
    }

    /// Sends `text` (shortened to [`MAX_SMS_CHARS`]) to the number `to` (international form).
    pub async fn send(&self, to: &str, text: &str) -> Result<(), SmsError> {
        let text: String = text.chars().take(MAX_SMS_CHARS).collect();
        let body = serde_json::json!({ "to": to, "text": text }).to_string();
        let mut req = self.client.post(self.url.clone()).header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.as_str());
        }
        let res = req.body(body).send().await.map_err(|e| SmsError::Send(e.without_url().to_string()))?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(SmsError::Send(format!("status {}", res.status().as_u16())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_is_https_or_on_this_machine() {
        assert!(SmsGateway::new("https://sms.example.org/send", None).is_ok());
        assert!(SmsGateway::new("http://127.0.0.1:9000/send", None).is_ok());
        assert!(SmsGateway::new("http://localhost:9000/send", None).is_ok());
        assert!(SmsGateway::new("http://sms.example.org/send", None).is_err());
        assert!(SmsGateway::new("https://user:secret@sms.example.org/send", None).is_err());
        assert!(SmsGateway::new("ftp://sms.example.org/", None).is_err());
        let g = SmsGateway::new("https://sms.example.org/k3y", Some("token-value".into()));
        let shown = format!("{g:?}");
        assert!(!shown.contains("token-value") && !shown.contains("k3y"), "{shown}");
    }
}
