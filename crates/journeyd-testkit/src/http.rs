//! GET on 127.0.0.1 (journeyd's `/metrics`, `/healthz`, `/readyz`), with reqwest's blocking
//! client. Call it from plain threads, not from inside a tokio runtime.

use std::sync::OnceLock;
use std::time::Duration;

fn client() -> &'static reqwest::blocking::Client {
    static CLIENT: OnceLock<reqwest::blocking::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .expect("an HTTP client")
    })
}

/// `GET http://127.0.0.1:port/path`: (status, body), or `None` when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let response = client()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .ok()?;
    let status = response.status().as_u16();
    let body = response.text().ok()?;
    Some((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn reads_status_and_body_and_none_when_nothing_listens() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).unwrap();
            s.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 9\r\nconnection: close\r\n\r\nrestoring")
                .unwrap();
        });
        assert_eq!(
            http_get(port, "/readyz"),
            Some((503, "restoring".to_string()))
        );
        server.join().unwrap();
        assert_eq!(http_get(port, "/readyz"), None);
    }
}
