//! Email over SMTP (lettre). `url: smtp://host:port` requires STARTTLS,
//! `smtps://host:port` is implicit TLS; plaintext only with `tls: none`
//! and a loopback host, so a misconfigured relay never silently sends in
//! the clear. A 4xx reply is retried, a 5xx reply is a dead letter with the
//! server's text. The action id is the Message-ID, so a resent email can be
//! recognised downstream.

use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;

use super::Outcome;
use crate::config::TargetConfig;
use crate::store::delivery::Claimed;

pub(super) struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Smtp {
    pub(super) fn from_target(t: &TargetConfig) -> Result<Self, String> {
        let at = |k: &str| format!("targets.{}.{k}", t.name);
        let url = t
            .setting("url")
            .ok_or_else(|| format!("{} is not set; actions wait until it is", at("url")))?;
        let from: Mailbox = t
            .setting("from")
            .ok_or_else(|| format!("{} is not set", at("from")))?
            .parse()
            .map_err(|e| format!("{}: {e}", at("from")))?;
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{}: {e}", at("url")))?;
        let host = parsed
            .host_str()
            .ok_or_else(|| format!("{}: no host", at("url")))?
            .to_owned();
        let tls = t.setting("tls").unwrap_or(match parsed.scheme() {
            "smtps" => "tls",
            _ => "starttls",
        });
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let mut builder = match (parsed.scheme(), tls) {
            ("smtp" | "smtps", "none") if loopback => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            }
            ("smtp" | "smtps", "none") => {
                return Err(format!(
                    "{}: tls: none is only allowed for a loopback SMTP server",
                    at("tls")
                ));
            }
            ("smtp", "starttls") => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)
                .map_err(|e| e.to_string())?,
            ("smtps", "tls") | ("smtp", "tls") => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&host).map_err(|e| e.to_string())?
            }
            (scheme, tls) => {
                return Err(format!(
                    "{}: unsupported scheme {scheme:?} with tls {tls:?}",
                    at("url")
                ));
            }
        };
        if let Some(port) = parsed.port() {
            builder = builder.port(port);
        }
        if let (Some(user), Some(pass)) = (t.setting("username"), t.setting("password")) {
            builder = builder.credentials(Credentials::new(user.to_owned(), pass.to_owned()));
        }
        builder = builder.timeout(Some(t.delivery.timeout.0));
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    pub(super) async fn send(&self, a: &Claimed) -> Outcome {
        let message = match self.message(a) {
            Ok(m) => m,
            Err(e) => {
                return Outcome::GiveUp {
                    status: None,
                    error: e,
                };
            }
        };
        match self.transport.send(message).await {
            Ok(resp) => Outcome::Delivered {
                status: None,
                excerpt: resp.message().collect::<Vec<_>>().join(" "),
                reference: None,
            },
            Err(e) if e.is_permanent() => Outcome::GiveUp {
                status: None,
                error: format!("SMTP {e}"),
            },
            Err(e) => Outcome::Retry {
                status: None,
                error: format!("SMTP {e}"),
                after: None,
                floor: e.is_timeout(),
            },
        }
    }

    fn message(&self, a: &Claimed) -> Result<Message, String> {
        let p = &a.payload;
        let list = |k: &str| -> Result<Vec<Mailbox>, String> {
            let items: Vec<&str> = match p.get(k) {
                Some(Value::String(s)) => vec![s.as_str()],
                Some(Value::Array(v)) => v.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            items
                .into_iter()
                .map(|s| {
                    s.parse::<Mailbox>()
                        .map_err(|e| format!("email(): {k} {s:?}: {e}"))
                })
                .collect()
        };
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(p.get("subject").and_then(Value::as_str).unwrap_or(""))
            .message_id(Some(format!("<{}@switchyard>", a.id)));
        for to in list("to")? {
            b = b.to(to);
        }
        for cc in list("cc")? {
            b = b.cc(cc);
        }
        let text = p.get("text").and_then(Value::as_str);
        let html = p.get("html").and_then(Value::as_str);
        let built = match (text, html) {
            (Some(t), Some(h)) => b.multipart(MultiPart::alternative_plain_html(
                t.to_owned(),
                h.to_owned(),
            )),
            (None, Some(h)) => b.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(h.to_owned()),
            ),
            (t, None) => b.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(t.unwrap_or("").to_owned()),
            ),
        };
        built.map_err(|e| format!("email(): {e}"))
    }
}
