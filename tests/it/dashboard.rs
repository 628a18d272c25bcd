//! The county dashboard over real HTTP on loopback: every page and CSV export, their
//! content, authentication, and a headless Chromium that signs in, opens a flagged project
//! and finds the chart and the flag with its evidence.

use std::io::{Read, Write};
use std::net::SocketAddr;

use crate::harness::*;

const COUNTY_P: &str = "county:620121";

async fn dashboard(s: &TestServer) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(anxin::dashboard::serve(s.api.clone(), l, Some("2026-03-01".into()), None, std::future::pending()));
    addr
}

/// A plain HTTP/1.1 GET; returns (status, headers, body).
fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String, Vec<u8>) {
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(c, "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    c.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head, raw[split + 4..].to_vec())
}

async fn seeded() -> TestServer {
    let s = TestServer::start().await;
    s.setup_project(3).await;
    s.ok(&format!("contractor:{}", gc()), "payroll", vec![payroll("P1", "2026-01", &[(1, "5000"), (2, "6000.50"), (3, "4000")])]).await;
    let paid = s.ok("bank:ICBC", "payout", vec![pay("P1", "W1", 1, "5000", "2026-01"), pay("P1", "W2", 2, "6000.50", "2026-01")]).await;
    // A complaint about the January wages, accepted and closed by citing the payout that
    // paid its worker; a second complaint still waiting to be accepted on 2026-03-01.
    use crate::casework::{close, decide, open_case};
    let county = format!("county:{}", crate::harness::COUNTY);
    s.ok(&county, "cases", vec![
        open_case("TS-1", crate::harness::COUNTY, "P1", &[1], "2026-02-02", "1月工资未发"),
        decide("TS-1", "2026-02-03", true, ""),
        close("TS-1", "2026-02-20", anxin::api::pb::CaseOutcome::Recovered, "5000", &[paid.first_seq]),
        open_case("TS-2", crate::harness::COUNTY, "", &[3], "2026-02-16", ""),
    ]).await;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_and_export_answers_with_the_query_layers_figures() {
    let s = seeded().await;
    let d = dashboard(&s).await;
    let token = s.token(COUNTY_P);
    let key = s.api.ledger.public_key();
    tokio::task::spawn_blocking(move || {
        let t = Some(token.as_str());
        // Summary: the county's figures and the project with its red flag.
        let (st, _, body) = get(d, "/", t);
        let html = String::from_utf8(body).unwrap();
        assert_eq!(st, 200);
        assert!(html.contains("县域概况") && html.contains("P1") && html.contains("WAGES_OVERDUE") && html.contains("dot red"), "{html}");
        // Every label in the page's language: the flags by name (the code in the title),
        // the grades as the policy names them, amounts grouped and in 万元.
        assert!(html.contains("工资逾期未付") && html.contains("红色") && !html.contains(" red,") && !html.contains("amber"), "{html}");
        assert!(html.contains("万元</small>"), "{html}");
        let (_, head, body) = get(d, "/?lang=en", t);
        let en = String::from_utf8(body).unwrap();
        assert!(en.contains("County summary") && head.contains("anxin_lang=en"));
        assert!(en.contains("Wages overdue") && !en.contains("工资逾期未付") && !en.contains("万元") && !en.contains("红色"), "{en}");
        // Project page: chart, flag with evidence, payrolls.
        let (st, _, body) = get(d, "/project/P1", t);
        let html = String::from_utf8(body).unwrap();
        assert_eq!(st, 200);
        assert!(html.contains("<svg id=\"chart\"") && html.contains("class=\"balance\"") && html.contains("class=\"due\""), "chart");
        assert!(html.contains("WAGES_OVERDUE") && html.contains("class=\"evidence\">"), "flag with evidence");
        assert!(html.contains("2026-01") && html.contains("15,000.50") && html.contains("data-v=\"15000.50\""), "payroll row, grouped, sorted by value");
        assert!(html.contains("class=\"pt\"") && html.contains("¥15,000.50</title>"), "the chart's values on hover");
        // Flags and worker lookup by masked ID.
        let (st, _, body) = get(d, "/flags", t);
        assert!(st == 200 && String::from_utf8(body).unwrap().contains("WAGES_OVERDUE"));
        let masked = anxin::domain::ids::NationalId::parse(&nid(3)).unwrap().masked();
        let (st, _, body) = get(d, &format!("/workers?masked={masked}"), t);
        let html = String::from_utf8(body).unwrap();
        assert!(st == 200 && html.contains(&masked) && html.contains("4,000.00"), "{html}");
        assert!(!html.contains(&nid(3)), "no clear national ID on a page");
        // Worker 1's payout with its receipt: a QR code of the whole receipt, the file,
        // which verifies offline with the ledger's key.
        let masked1 = anxin::domain::ids::NationalId::parse(&nid(1)).unwrap().masked();
        let (_, _, body) = get(d, &format!("/workers?masked={masked1}"), t);
        let html = String::from_utf8(body).unwrap();
        let at = html.find("href=\"/receipt/").expect("a receipt link for the payout") + "href=\"/receipt/".len();
        let seq: u64 = html[at..].split('"').next().unwrap().parse().unwrap();
        assert!(html.contains("¥5,000.00"), "{html}");
        let (st, _, body) = get(d, &format!("/receipt/{seq}"), t);
        let page = String::from_utf8(body).unwrap();
        assert!(st == 200 && page.contains("<svg") && page.contains("c2sp.org/tlog-proof@v1"), "{page}");
        let (st, head, proof) = get(d, &format!("/receipt/{seq}/proof"), t);
        assert!(st == 200 && head.contains("receipt-"), "{head}");
        let r = anxin::receipt::Receipt::parse(std::str::from_utf8(&proof).unwrap()).unwrap();
        let v = r.verify(&key, None).unwrap();
        assert_eq!((v.records.len(), v.records[0].seq), (1, seq));
        assert_eq!(v.records[0].event.name(), "WagePaid");
        // Cases: by source, then each case with its limits; the open one is overdue (red:
        // received 2026-02-16, not accepted within 5 working days, and not closed).
        let (st, _, body) = get(d, "/cases", t);
        let html = String::from_utf8(body).unwrap();
        assert_eq!(st, 200);
        assert!(html.contains("案件办理") && html.contains("id=\"casework\"") && html.contains("id=\"case-list\""), "{html}");
        let row = |no: &str| html.split("<tr>").find(|r| r.contains(&format!(">{no}<"))).unwrap_or_else(|| panic!("{no} in {html}")).to_owned();
        let (ts1, ts2) = (row("TS-1"), row("TS-2"));
        assert!(ts1.contains("5,000.00") && ts1.contains(">已办结<") && ts1.contains("dot green") && ts1.contains("/project/P1"), "{ts1}");
        assert!(ts2.contains("2026-02-16") && ts2.contains("dot yellow") && ts2.contains("黄色"), "{ts2}");
        let complaints = html.split("<tr>").find(|r| r.contains(">来电来访投诉<") && !r.contains("TS-")).expect("the complaint row by source").to_owned();
        assert!(complaints.contains(">2<") && complaints.contains(">1<") && complaints.contains("50.00%") && complaints.contains("5,000.00"), "{complaints}");
        assert!(!html.contains(&nid(1)) && !html.contains(&nid(3)), "no complainant's ID on the page");
        assert!(html.contains("id=\"orders\"") && html.contains("id=\"credit-list\""), "the year's orders and the credit list: {html}");
        // The flags page names the case when a flag has no project.
        let (_, _, body) = get(d, "/flags", t);
        let html = String::from_utf8(body).unwrap();
        assert!(html.contains("<td>TS-2</td>"), "CASE_OVERDUE by case number");
        // Each flag's sentence in the page's language.
        assert!(html.contains("案件TS-2于2026-02-16收到") && !html.contains("is not accepted"), "{html}");
        let (_, _, body) = get(d, "/flags?lang=en", t);
        let html = String::from_utf8(body).unwrap();
        assert!(html.contains("case TS-2 received on 2026-02-16") && !html.contains("案件TS-2"), "{html}");
        // The work report for the period, as `anxin report` writes it, in both languages.
        let (st, _, body) = get(d, "/report?from=2026-01-01&to=2026-02-28", t);
        let html = String::from_utf8(body).unwrap();
        assert_eq!(st, 200);
        assert!(html.contains("根治欠薪工作报告（2026-01-01 至 2026-02-28）") && html.contains("11,000.50") , "{html}");
        let (st, _, body) = get(d, "/report?from=2026-01-01&to=2026-02-28&lang=en", t);
        let html = String::from_utf8(body).unwrap();
        assert!(st == 200 && html.contains("wage-arrears work report, 2026-01-01 to 2026-02-28"), "{html}");
        assert_eq!(get(d, "/report?from=2026-03-01&to=2026-01-01", t).0, 400, "a period that ends before it starts");
        // CSV exports: UTF-8 with BOM, the same figures.
        for (path, needle) in [
            ("/projects.csv", "兰州新区安置房一期"),
            ("/flags.csv", "WAGES_OVERDUE"),
            ("/summary.csv", "4000.00"),
            ("/project/P1/months.csv", "2026-01"),
            ("/project/P1/payrolls.csv", "6000.50"),
            (format!("/workers.csv?masked={masked}").as_str(), "4000.00"),
        ] {
            let (st, head, body) = get(d, path, t);
            assert_eq!(st, 200, "{path}");
            assert!(head.to_lowercase().contains("content-type: text/csv; charset=utf-8"), "{path}: {head}");
            assert_eq!(&body[..3], &[0xEF, 0xBB, 0xBF], "{path}: BOM");
            assert!(String::from_utf8(body[3..].to_vec()).unwrap().contains(needle), "{path}");
        }
    })
    .await
    .unwrap();
    s.stop().await;
}

/// One HTTP/1.1 request over TLS, trusting only `ca`; `None` when no TLS session opens.
async fn https(addr: SocketAddr, ca: &rustls::pki_types::CertificateDer<'static>, request: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)).connect(name, tcp).await.ok()?;
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw).await;
    Some(String::from_utf8_lossy(&raw).into_owned())
}

/// With the server's certificate the dashboard is served over TLS only: its pages answer
/// a client that trusts the certificate, the token's cookie is `Secure`, a plain-text
/// request gets no page, and a client that connects and never speaks holds up no one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_certificate_the_dashboard_is_served_over_tls() {
    let s = seeded().await;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let config = anxin::api::https::server_config(&anxin::api::Tls { cert_pem: cert.cert.pem().into_bytes(), key_pem: cert.key_pair.serialize_pem().into_bytes() }).unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let d = l.local_addr().unwrap();
    tokio::spawn(anxin::dashboard::serve(s.api.clone(), l, Some("2026-03-01".into()), Some(config), std::future::pending()));
    let ca = cert.cert.der().clone();
    // A connection that never speaks, held open through all that follows.
    let _silent = tokio::net::TcpStream::connect(d).await.unwrap();
    let token = s.token(COUNTY_P);
    // (Well within the 10 s a handshake is given: the silent one must not be waited on.)
    let get_summary = format!("GET / HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n");
    let first = https(d, &ca, &get_summary);
    let page = tokio::time::timeout(std::time::Duration::from_secs(5), first).await.expect("not held up by a silent connection").expect("a TLS session");
    assert!(page.starts_with("HTTP/1.1 200") && page.contains("县域概况"), "{}", &page[..page.len().min(400)]);
    let body = format!("token={token}");
    let login = https(d, &ca, &format!("POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())).await.unwrap();
    let cookie = login.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie: anxin_token=")).unwrap_or_else(|| panic!("{login}"));
    assert!(cookie.contains("; Secure") && cookie.contains("HttpOnly"), "{cookie}");
    // Plain text on the TLS port: no page, whatever comes back.
    let plain = tokio::task::spawn_blocking(move || {
        let mut c = std::net::TcpStream::connect(d).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(15))).unwrap();
        write!(c, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
        let mut raw = Vec::new();
        let _ = c.read_to_end(&mut raw);
        raw
    })
    .await
    .unwrap();
    assert!(!String::from_utf8_lossy(&plain).contains("HTTP/1.1 200"), "a page over plain text");
    // A client that does not trust the certificate opens no session.
    let stranger = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    assert!(https(d, &stranger.cert.der().clone(), "GET /login HTTP/1.1\r\nHost: localhost\r\n\r\n").await.is_none());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_valid_token_pages_go_to_login_and_exports_are_refused() {
    let s = seeded().await;
    let d = dashboard(&s).await;
    let bank = s.token("bank:ABC");
    tokio::task::spawn_blocking(move || {
        for path in ["/", "/project/P1", "/flags", "/workers"] {
            let (st, head, _) = get(d, path, None);
            assert!(st == 303 && head.contains("location: /login"), "{path}: {st} {head}");
        }
        for path in ["/projects.csv", "/flags.csv", "/summary.csv", "/project/P1/months.csv", "/project/P1/payrolls.csv"] {
            assert_eq!(get(d, path, None).0, 401, "{path}");
            assert_eq!(get(d, path, Some("anx_nope")).0, 401, "{path}");
        }
        // A bank that serves no project here may not read the county or the project.
        assert_eq!(get(d, "/project/P1", Some(&bank)).0, 403);
        assert_eq!(get(d, "/summary.csv", Some(&bank)).0, 403);
        let (st, _, body) = get(d, "/login", None);
        assert!(st == 200 && String::from_utf8(body).unwrap().contains("name=\"token\""));
    })
    .await
    .unwrap();
    s.stop().await;
}

fn chromium() -> String {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if std::process::Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return c.to_owned();
        }
    }
    panic!("headless Chromium is needed for the browser test: `apt-get install chromium` (tests/run installs it)");
}

/// A headless Chromium with a profile of its own (which keeps the sign-in cookie) in
/// front of one dashboard; its screenshots and PDFs go to target/screenshots.
struct Browser {
    bin: String,
    profile: tempfile::TempDir,
    d: SocketAddr,
    shots: std::path::PathBuf,
}

/// What each browser test starts from: the seeded server, its dashboard, a county's
/// token, and a browser.
async fn browsing() -> (TestServer, String, Browser) {
    let bin = chromium();
    let s = seeded().await;
    let d = dashboard(&s).await;
    let token = s.token(COUNTY_P);
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    (s, token, Browser { bin, profile: tempfile::tempdir().unwrap(), d, shots })
}

impl Browser {
    fn run(&self, url: &str, out: &[&str], size: &str) -> String {
        let o = std::process::Command::new(&self.bin)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--virtual-time-budget=5000"])
            .arg(format!("--window-size={size}"))
            .arg(format!("--user-data-dir={}", self.profile.path().display()))
            .args(out)
            .arg(url)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The page at `path` as the browser has built it.
    fn dom(&self, path: &str) -> String {
        self.run(&format!("http://{}{path}", self.d), &["--dump-dom"], "1280,1300")
    }

    /// A screenshot of the page at `path`, in a window of `size`, checked not empty.
    fn screenshot(&self, path: &str, name: &str, size: &str) {
        let file = self.shots.join(name);
        self.run(&format!("http://{}{path}", self.d), &[&format!("--screenshot={}", file.display())], size);
        assert!(std::fs::metadata(&file).unwrap().len() > 10_000, "{name}");
    }

    /// The page at `path` printed to PDF, as a browser prints it.
    fn pdf(&self, path: &str, name: &str) {
        let file = self.shots.join(name);
        self.run(&format!("http://{}{path}", self.d), &[&format!("--print-to-pdf={}", file.display()), "--no-pdf-header-footer"], "1280,1300");
        assert!(std::fs::read(&file).unwrap().starts_with(b"%PDF"), "{name} prints");
    }

    /// Runs `script` in a copy of a dashboard page (its HTML as served, in a file, so that
    /// a test script can be put in it) shown in a frame of `size` ("390,844": a phone; a
    /// headless window is never narrower than 500 px, a frame is); the script leaves its
    /// answer as the text of `<pre id="probe">` in the window, which is returned.
    fn probe(&self, page: &str, script: &str, size: &str) -> String {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let file = self.profile.path().join(format!("probe-{id}.html"));
        let done = "function answer(x){var d=window.top.document,p=d.createElement('pre');p.id='probe';p.textContent=typeof x==='string'?x:JSON.stringify(x);d.body.appendChild(p)}";
        std::fs::write(&file, page.replace("</body>", &format!("<script>{done}</script>{script}</body>"))).unwrap();
        let (w, h) = size.split_once(',').unwrap();
        let frame = self.profile.path().join(format!("frame-{id}.html"));
        std::fs::write(&frame, format!("<!doctype html><html><body style=\"margin:0\"><iframe src=\"{}\" style=\"width:{w}px;height:{h}px;border:0\"></iframe></body></html>", file.display())).unwrap();
        let dom = self.run(&format!("file://{}", frame.display()), &["--dump-dom", "--allow-file-access-from-files"], "1280,1300");
        let at = dom.find("<pre id=\"probe\">").unwrap_or_else(|| panic!("the probe answered nothing: {}", &dom[dom.len().saturating_sub(800)..]));
        let text = &dom[at + "<pre id=\"probe\">".len()..];
        text[..text.find("</pre>").unwrap()].replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    }

    /// axe-core (tests/a11y, installed by tests/run) over a page, for WCAG 2.1 A and AA:
    /// contrast, names and labels of every control, keyboard access, language, structure.
    /// Returns the violations, one line each.
    fn accessibility_violations(&self, page: &str) -> Vec<String> {
        let axe = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/a11y/node_modules/axe-core/axe.min.js");
        assert!(axe.exists(), "axe-core is not installed: tests/run installs it (npm ci --prefix tests/a11y)");
        let run = format!(
            "<script src=\"file://{}\"></script><script>axe.run(document,{{runOnly:{{type:'tag',values:['wcag2a','wcag2aa','wcag21a','wcag21aa']}}}}).then(function(r){{\
             answer(r.violations.map(function(v){{return v.id+' ('+v.impact+'): '+v.help+': '+v.nodes.map(function(n){{return n.target.join(' ')}}).join(' | ')}}))}},function(e){{answer(['axe failed: '+e])}})</script>",
            axe.display()
        );
        serde_json::from_str(&self.probe(page, &run, "1280,1300")).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_accessible_shareable_printable_and_fits_a_phone() {
    let (s, token, b) = browsing().await;
    let d = b.d;
    tokio::task::spawn_blocking(move || {
        let t = Some(token.as_str());
        let page = |path: &str| String::from_utf8(get(d, path, t).2).unwrap();
        let masked = anxin::domain::ids::NationalId::parse(&nid(1)).unwrap().masked();
        // The checker finds what it should: a field without a name, grey on grey.
        let bad = b.accessibility_violations("<!doctype html><html lang=\"en\"><head><title>x</title></head><body><main><input><p style=\"color:#aaa;background:#bbb\">faint</p></main></body></html>");
        assert!(bad.iter().any(|v| v.starts_with("label")) && bad.iter().any(|v| v.starts_with("color-contrast")), "{bad:?}");
        // Every page, in both languages, passes the accessibility checker.
        for path in ["/", "/project/P1", "/flags", "/cases", &format!("/workers?masked={masked}"), "/login", "/?lang=en", "/project/P1?lang=en"] {
            let v = b.accessibility_violations(&page(path));
            assert!(v.is_empty(), "{path}: accessibility violations:\n{}", v.join("\n"));
        }
        // Keyboard: a header sorts with Enter, and says how it sorts.
        let sorted = b.probe(&page("/flags"), "<script>var th=document.querySelectorAll('#flags th')[3];th.focus();\
            th.dispatchEvent(new KeyboardEvent('keydown',{key:'Enter',bubbles:true}));answer([document.activeElement===th,th.getAttribute('aria-sort'),location.search])</script>", "1280,1300");
        assert_eq!(sorted, r#"[true,"ascending","?s.flags=3"]"#, "a focused header sorts on Enter and keeps the sort in the URL");
        // A shared URL brings its filter and sort back: only the case's row shows.
        assert!(b.dom(&format!("/login#{token}")).contains("P1"), "signed in");
        let shared = b.dom("/flags?f.flags=TS-2&s.flags=-3");
        let rows: Vec<&str> = shared.split("<tr").skip(2).collect();
        assert!(rows.len() >= 2, "{shared}");
        for r in &rows {
            assert_eq!(r.contains(">TS-2<"), !r.contains("display: none"), "the filter of the URL applies: {r}");
        }
        assert!(shared.contains("aria-sort=\"descending\""), "the sort of the URL applies");
        // A phone: the page does not scroll sideways (a wide table scrolls in its box).
        for path in ["/", "/project/P1", "/flags"] {
            let probe_js = "<script>var wide=[];document.querySelectorAll('body *').forEach(function(e){var r=e.getBoundingClientRect();if(r.right>innerWidth+1&&!e.closest('.scroll'))wide.push(e.tagName+'.'+e.className+' '+Math.round(r.right))});\
                answer({inner:innerWidth,scroll:document.documentElement.scrollWidth,wide:wide.slice(0,5)})</script>";
            let v: serde_json::Value = serde_json::from_str(&b.probe(&page(path), probe_js, "390,844")).unwrap();
            eprintln!("{path} on a phone: {v}");
            assert!(v["inner"].as_u64().unwrap() <= 500, "the window is a phone's: {v}");
            assert!(v["scroll"].as_u64() <= v["inner"].as_u64() && v["wide"].as_array().unwrap().is_empty(), "{path} scrolls sideways on a phone: {v}");
        }
        // (A screenshot's window is at least 500 px wide in headless Chromium.)
        b.screenshot("/project/P1", "project-phone.png", "500,1000");
        // Print: the project page on paper, without the navigation and the filters.
        let printed = b.probe(&page("/project/P1"), "<script>var hidden=[];for(var r of document.styleSheets[0].cssRules){if(r.media&&r.media.mediaText==='print'){for(var x of r.cssRules){if(x.style.display==='none')hidden.push(x.selectorText)}}}answer(hidden.join(' '))</script>", "1280,1300");
        assert!(printed.contains("header") && printed.contains("input.filter"), "{printed}");
        b.pdf("/project/P1", "project.pdf");
    })
    .await
    .unwrap();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_signs_in_opens_a_flagged_project_and_sees_the_chart_and_evidence() {
    let (s, token, b) = browsing().await;
    tokio::task::spawn_blocking(move || {
        // Sign in through the login page (the token in the URL fragment never reaches the
        // server's logs); the page script posts it and lands on the summary.
        let dom = b.dom(&format!("/login#{token}"));
        assert!(dom.contains("县域概况") && dom.contains("P1"), "signed in and shown the summary: {}", &dom[..dom.len().min(500)]);
        b.screenshot("/", "summary.png", "1280,1300");
        // Open the flagged project, as a clerk would, and look for the chart and the flag.
        let dom = b.dom("/project/P1");
        assert!(dom.contains("id=\"chart\"") && dom.contains("polyline"), "the chart is there");
        assert!(dom.contains("WAGES_OVERDUE") && dom.contains("class=\"evidence\""), "the flag with its evidence is there");
        b.screenshot("/project/P1", "project.png", "1280,1300");
        // The cases page, and the work report as a browser prints it.
        let dom = b.dom("/cases");
        assert!(dom.contains("TS-1") && dom.contains("id=\"case-list\""), "the cases page");
        b.screenshot("/cases", "cases.png", "1280,1300");
        let report = "/report?from=2026-01-01&to=2026-02-28";
        let dom = b.dom(report);
        assert!(dom.contains("根治欠薪工作报告") && dom.contains("class=\"notes\""), "the report with its footnotes");
        b.screenshot(report, "report.png", "1280,1300");
        b.pdf(report, "report.pdf");
    })
    .await
    .unwrap();
    s.stop().await;
}
