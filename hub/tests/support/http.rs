//! A bare HTTP/1.1 client for the station app's tests: one request per connection, the answer
//! read whole (a chunked body is put back together), and the pairing and sign-in every screen's
//! test starts with.

use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 exchange: status, headers (lower-case names), body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `name=value` of a Set-Cookie header.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .find_map(|(_, v)| {
                let first = v.split(';').next()?;
                first
                    .starts_with(&format!("{name}="))
                    .then(|| first.to_owned())
            })
    }

    /// The value of the hidden or meta field `name` in the page.
    pub fn field(&self, name: &str) -> String {
        for pattern in [
            format!("name=\"{name}\" value=\""),
            format!("name=\"{name}\" content=\""),
        ] {
            if let Some(i) = self.body.find(&pattern) {
                let rest = &self.body[i + pattern.len()..];
                return rest[..rest.find('"').unwrap()].to_owned();
            }
        }
        panic!("no field {name} in {}", self.body)
    }
}

/// A POST from the app's own pages whose body is not a form (a file or a photo), with extra
/// headers (e.g. `X-CSRF-Token`, `Content-Type`).
pub async fn post_body(
    addr: SocketAddr,
    path: &str,
    cookies: &[&str],
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nOrigin: http://{addr}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !cookies.is_empty() {
        head.push_str(&format!("Cookie: {}\r\n", cookies.join("; ")));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// Sends one request with these cookies and, when given, an `Origin` header (a POST is a form).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookies: &[&str],
    origin: Option<&str>,
    body: &str,
) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !cookies.is_empty() {
        request.push_str(&format!("Cookie: {}\r\n", cookies.join("; ")));
    }
    if let Some(origin) = origin {
        request.push_str(&format!("Origin: {origin}\r\n"));
    }
    if method == "POST" {
        request.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    Answer {
        status,
        headers,
        body: if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        },
    }
}

/// A request from the app's own pages (same origin).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookies: &[&str],
    body: &str,
) -> Answer {
    let origin = format!("http://{addr}");
    request(addr, method, path, cookies, Some(&origin), body).await
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

/// A tablet paired with a one-time code and a staff member signed in on it.
pub struct SignedIn {
    pub device: String,
    pub session: String,
    /// The station's home page right after sign-in.
    pub page: Answer,
}

impl SignedIn {
    /// Both cookies, as a request sends them.
    pub fn cookies(&self) -> Vec<String> {
        vec![self.device.clone(), self.session.clone()]
    }
}

/// Pairs a tablet with `code` and signs `staff` in with `pin`.
pub async fn pair_and_sign_in(addr: SocketAddr, code: &str, staff: &str, pin: &str) -> SignedIn {
    let paired = http(addr, "POST", "/station/pair", &[], &format!("code={code}")).await;
    assert_eq!(paired.status, 303, "{}", paired.body);
    let device = paired.cookie("hub_device").expect("device cookie");
    let signed = http(
        addr,
        "POST",
        "/station/signin",
        &[&device],
        &format!("staff={staff}&pin={pin}"),
    )
    .await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let session = signed.cookie("hub_session").expect("session cookie");
    let page = request(addr, "GET", "/station", &[&device, &session], None, "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    SignedIn {
        device,
        session,
        page,
    }
}
