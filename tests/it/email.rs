//! Email against a real SMTP server (aiosmtpd, installed by scripts/test.sh):
//! the message arrives with text and HTML parts and the action id as its
//! Message-ID; a 451 reply is retried, a 550 reply is a dead letter.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::support::{rows, wait_until};

async fn post(addr: std::net::SocketAddr, body: &str) {
    crate::support::post_to(addr, "/h", body).await;
}

struct SmtpServer {
    child: Child,
    port: u16,
    mail: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn smtp_server() -> SmtpServer {
    let dir = tempfile::tempdir().unwrap();
    let port_file = dir.path().join("port");
    let mail = dir.path().join("mail");
    std::fs::create_dir(&mail).unwrap();
    let child = Command::new("python3")
        .arg("tests/support/smtp_server.py")
        .arg(&port_file)
        .arg(&mail)
        .spawn()
        .expect("python3 with aiosmtpd (scripts/test.sh installs it)");
    let started = Instant::now();
    let port = loop {
        if let Ok(p) = std::fs::read_to_string(&port_file) {
            break p.trim().parse().unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the SMTP server did not start (is aiosmtpd installed?)"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    SmtpServer {
        child,
        port,
        mail,
        _dir: dir,
    }
}

fn project(port: u16) -> (tempfile::TempDir, switchyard::config::Config) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/t.rhai"),
        r#"fn on_event(e) { email("mail", #{ to: e.to, subject: `Session ${e.id}`, text: "plain body", html: "<p>html body</p>" }); }"#,
    )
    .unwrap();
    let text = format!(
        "listen: 127.0.0.1:0\nstore: sqlite://journal.db\nadmin: {{ listen: null }}\ndelivery:\n  timeout: 5s\n  retry: {{ schedule: [30ms], floor: 30ms }}\n  rate: {{ per_second: 1000, burst: 100 }}\ntargets:\n  mail: {{ kind: smtp, url: \"smtp://127.0.0.1:{port}\", tls: none, from: \"switchyard@acme.example\" }}\nsources:\n  s: {{ path: /h, verify: none }}\n"
    );
    let config =
        switchyard::config::Config::from_str_with_env(&text, dir.path(), &|_| None).unwrap();
    (dir, config)
}

#[tokio::test]
async fn an_email_arrives_with_both_parts_and_the_action_id() {
    let smtp = smtp_server();
    let (d, config) = project(smtp.port);
    let db = d.path().join("journal.db");
    let running = switchyard::app::start(config).await.unwrap();
    post(
        running.addr,
        r#"[{"type":"t","id":"E1","to":"agent@acme.example"}]"#,
    )
    .await;
    wait_until("delivery", || {
        rows(&db, "SELECT state FROM actions") == ["delivered"]
    })
    .await;
    running.stop().await;
    let mail = std::fs::read_to_string(smtp.mail.join("1.eml")).unwrap();
    assert!(mail.contains("Subject: Session E1"), "{mail}");
    assert!(mail.contains("To: agent@acme.example"), "{mail}");
    assert!(mail.contains("multipart/alternative"), "{mail}");
    assert!(
        mail.contains("plain body") && mail.contains("<p>html body</p>"),
        "{mail}"
    );
    let id = rows(&db, "SELECT id FROM actions").remove(0);
    assert!(
        mail.contains(&format!("Message-ID: <{id}@switchyard>")),
        "{mail}"
    );
}

#[tokio::test]
async fn smtp_451_is_retried_and_550_is_a_dead_letter() {
    let smtp = smtp_server();
    let (d, config) = project(smtp.port);
    let db = d.path().join("journal.db");
    let running = switchyard::app::start(config).await.unwrap();
    post(running.addr, r#"[{"type":"t","id":"T1","to":"tempfail@acme.example"},{"type":"t","id":"N1","to":"nouser@acme.example"}]"#).await;
    wait_until("the 550 dead letter and two 451 retries", || {
        rows(&db, "SELECT state FROM actions WHERE state = 'dead'").len() == 1
            && rows(
                &db,
                "SELECT result FROM action_attempts WHERE result = 'retry'",
            )
            .len()
                >= 2
    })
    .await;
    running.stop().await;
    let dead = rows(&db, "SELECT last_error FROM actions WHERE state = 'dead'");
    assert!(
        dead[0].contains("550") && dead[0].contains("No such user"),
        "{dead:?}"
    );
    let retried = rows(
        &db,
        "SELECT error FROM action_attempts WHERE result = 'retry' LIMIT 1",
    );
    assert!(retried[0].contains("451"), "{retried:?}");
    assert!(!smtp.mail.join("1.eml").exists(), "nothing was accepted");
}
