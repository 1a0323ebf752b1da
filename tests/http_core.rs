//! The engine-free HTTP pool against the real test server on 127.0.0.1.

mod support;

use std::time::{Duration, Instant};

use netkit::core::events::Budget;
use netkit::core::http::{
    ErrorKind, HttpPool, Method, PoolSettings, RequestBody, RequestId, RequestSpec, Response,
};
use support::http_server::{TestServer, start_blocking};

fn server() -> TestServer {
    start_blocking()
}

fn get(url: String) -> RequestSpec {
    spec(Method::Get, url, RequestBody::Empty, vec![])
}

fn spec(method: Method, url: String, body: RequestBody, headers: Vec<(&str, &str)>) -> RequestSpec {
    RequestSpec {
        method,
        url,
        headers: headers
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body,
    }
}

fn fast_settings() -> PoolSettings {
    PoolSettings {
        retry_base_delay: Duration::from_millis(20),
        retry_max_delay: Duration::from_secs(3),
        timeout: Duration::from_secs(10),
        ..PoolSettings::default()
    }
}

/// Waits for the given requests to end and returns their responses in id order.
fn wait_all(pool: &HttpPool, ids: &[RequestId], within: Duration) -> Vec<Response> {
    let deadline = Instant::now() + within;
    let mut got: Vec<Option<Response>> = vec![None; ids.len()];
    while got.iter().any(Option::is_none) {
        assert!(
            Instant::now() < deadline,
            "requests did not finish within {within:?}"
        );
        for event in pool.drain(Budget::default()) {
            let pos = ids
                .iter()
                .position(|id| *id == event.id)
                .expect("event for a request we made");
            assert!(got[pos].is_none(), "request {} ended twice", event.id);
            got[pos] = Some(event.response);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    got.into_iter().map(Option::unwrap).collect()
}

fn one(pool: &HttpPool, spec: RequestSpec) -> Response {
    let id = pool.submit(Ok(spec));
    wait_all(pool, &[id], Duration::from_secs(20)).remove(0)
}

#[test]
fn json_keeps_integers_and_parses_off_thread() {
    let srv = server();
    let pool = HttpPool::new(fast_settings());
    let res = one(&pool, get(format!("{}/json", srv.http_url)));
    assert!(res.ok(), "{}", res.error_message);
    let json = res.json.expect("parsed JSON");
    assert_eq!(json["int"].as_i64(), Some(42));
    assert!(json["float"].is_f64());
    assert!(
        json["big_int"].is_f64(),
        "integers beyond i64 become floats"
    );
    assert_eq!(res.attempts, 1);
    assert_eq!(res.http_version, "HTTP/1.1");
}

#[test]
fn concurrency_limit_and_fifo_start_order() {
    let srv = server();
    let pool = HttpPool::new(PoolSettings {
        max_concurrent: 4,
        ..fast_settings()
    });
    let ids: Vec<_> = (0..24)
        .map(|i| pool.submit(Ok(get(format!("{}/delay?ms=40&id=fifo{i}", srv.http_url)))))
        .collect();
    let results = wait_all(&pool, &ids, Duration::from_secs(20));
    assert!(results.iter().all(Response::ok));
    assert!(
        srv.stats().peak_concurrency <= 4,
        "peak {}",
        srv.stats().peak_concurrency
    );
    assert_eq!(pool.stats().peak_in_flight, 4);
    let order: Vec<String> = srv
        .order()
        .into_iter()
        .filter(|id| id.starts_with("fifo"))
        .collect();
    // Four start together and may arrive in any order among themselves; the groups may not.
    for (i, id) in order.iter().enumerate() {
        let n: usize = id[4..].parse().unwrap();
        assert!(
            n / 4 == i / 4 || n.abs_diff(i) < 4,
            "request {n} arrived at position {i}: {order:?}"
        );
    }
}

#[test]
fn queue_bound_rejects_overflow_with_queue_full() {
    let srv = server();
    let pool = HttpPool::new(PoolSettings {
        max_concurrent: 1,
        max_queued: 2,
        ..fast_settings()
    });
    let ids: Vec<_> = (0..5)
        .map(|_| pool.submit(Ok(get(format!("{}/delay?ms=100", srv.http_url)))))
        .collect();
    let res = wait_all(&pool, &ids, Duration::from_secs(10));
    let full = res
        .iter()
        .filter(|r| r.error == ErrorKind::QueueFull)
        .count();
    assert_eq!(full, 2, "1 running + 2 queued, 2 rejected");
    assert_eq!(res.iter().filter(|r| r.ok()).count(), 3);
}

#[test]
fn flaky_endpoint_succeeds_on_third_attempt() {
    let srv = server();
    let pool = HttpPool::new(fast_settings());
    let res = one(
        &pool,
        get(format!("{}/flaky?key=core-flaky&fail=2", srv.http_url)),
    );
    assert!(res.ok(), "{}", res.error_message);
    assert_eq!(res.attempts, 3);
    assert_eq!(pool.stats().retries, 2);
}

#[test]
fn retry_after_is_waited_for() {
    let srv = server();
    let pool = HttpPool::new(fast_settings());
    let started = Instant::now();
    let res = one(
        &pool,
        get(format!(
            "{}/retry-after?key=core-ra&seconds=1",
            srv.http_url
        )),
    );
    assert!(res.ok(), "{}", res.error_message);
    assert!(started.elapsed() >= Duration::from_millis(950));
    assert!(res.json.unwrap()["waited_ms"].as_u64().unwrap() >= 950);
}

#[test]
fn post_is_retried_only_with_idempotency_key() {
    let srv = server();
    let pool = HttpPool::new(fast_settings());
    let body = RequestBody::Json(bytes::Bytes::from_static(b"{}"));
    let res = one(
        &pool,
        spec(
            Method::Post,
            format!("{}/flaky?key=core-post&fail=1", srv.http_url),
            body.clone(),
            vec![],
        ),
    );
    assert_eq!(res.status, 503);
    assert_eq!(res.attempts, 1);
    assert_eq!(srv.key_count("core-post"), 1);
    let res = one(
        &pool,
        spec(
            Method::Post,
            format!("{}/flaky?key=core-post-key&fail=1", srv.http_url),
            body,
            vec![("Idempotency-Key", "k1")],
        ),
    );
    assert!(res.ok());
    assert_eq!(res.attempts, 2);
}

#[test]
fn timeout_and_cancel() {
    let srv = server();
    let pool = HttpPool::new(PoolSettings {
        timeout: Duration::from_millis(200),
        max_retries: 0,
        ..fast_settings()
    });
    let res = one(&pool, get(format!("{}/delay?ms=3000", srv.http_url)));
    assert_eq!(res.error, ErrorKind::Timeout, "{}", res.error_message);

    let id = pool.submit(Ok(get(format!("{}/delay?ms=3000", srv.http_url))));
    std::thread::sleep(Duration::from_millis(50));
    assert!(pool.cancel(id));
    let started = Instant::now();
    let res = wait_all(&pool, &[id], Duration::from_secs(2)).remove(0);
    assert_eq!(res.error, ErrorKind::Cancelled);
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[test]
fn error_kinds_keep_the_body() {
    let srv = server();
    let pool = HttpPool::new(PoolSettings {
        max_body_bytes: 100_000,
        max_retries: 0,
        ..fast_settings()
    });
    let bad = one(&pool, get(format!("{}/bad-json", srv.http_url)));
    assert_eq!(bad.error, ErrorKind::Decode);
    assert_eq!(&bad.body[..], b"{\"a\": 1,,}");

    let big = one(&pool, get(format!("{}/big?bytes=5000000", srv.http_url)));
    assert_eq!(big.error, ErrorKind::BodyTooLarge);
    let big = one(
        &pool,
        get(format!("{}/big?bytes=5000000&chunked=1", srv.http_url)),
    );
    assert_eq!(big.error, ErrorKind::BodyTooLarge);
    assert_eq!(big.body.len(), 100_000);

    let reset = one(&pool, get(format!("{}/reset-mid-body", srv.http_url)));
    assert_eq!(
        reset.error,
        ErrorKind::ConnectionLost,
        "{}",
        reset.error_message
    );
    assert_eq!(reset.body.len(), 100);

    let text = one(&pool, get(format!("{}/non-utf8", srv.http_url)));
    assert!(text.ok());
    assert_eq!(text.text(), "\u{fffd}\u{fffd}A\u{fffd}");

    let deep = one(&pool, get(format!("{}/deep-json?depth=5000", srv.http_url)));
    assert_eq!(deep.error, ErrorKind::Decode);
    assert!(deep.error_message.contains("nested deeper"));

    let refused = {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        one(&pool, get(format!("http://127.0.0.1:{port}/")))
    };
    assert_eq!(
        refused.error,
        ErrorKind::Connect,
        "{}",
        refused.error_message
    );

    let invalid = pool.submit(Err((ErrorKind::InvalidUrl, "bad".into(), "x".into())));
    assert_eq!(
        wait_all(&pool, &[invalid], Duration::from_secs(1))[0].error,
        ErrorKind::InvalidUrl
    );
}

#[test]
fn gzip_and_redirects() {
    let srv = server();
    let pool = HttpPool::new(fast_settings());
    let res = one(&pool, get(format!("{}/gzip", srv.http_url)));
    assert!(res.ok());
    assert_eq!(
        res.json.unwrap()["compressed"],
        serde_json::Value::Bool(true)
    );

    let body = RequestBody::Text(bytes::Bytes::from_static(b"payload"));
    for (code, method, kept) in [
        (301, "GET", false),
        (302, "GET", false),
        (303, "GET", false),
        (307, "POST", true),
        (308, "POST", true),
    ] {
        let res = one(
            &pool,
            spec(
                Method::Post,
                format!("{}/redirect/{code}?to=/echo", srv.http_url),
                body.clone(),
                vec![],
            ),
        );
        assert!(res.ok(), "{code}: {}", res.error_message);
        let json = res.json.unwrap();
        assert_eq!(json["method"], method, "{code}");
        assert_eq!(json["body"] == "payload", kept, "{code}");
    }
    let res = one(&pool, get(format!("{}/redirect-loop", srv.http_url)));
    assert_eq!(res.error, ErrorKind::TooManyRedirects);
}

#[test]
fn tls_needs_the_ca_and_negotiates_http2() {
    let srv = server();
    let pool = HttpPool::new(PoolSettings {
        max_retries: 0,
        ..fast_settings()
    });
    let res = one(&pool, get(format!("{}/json", srv.https_url)));
    assert_eq!(res.error, ErrorKind::Tls, "{}", res.error_message);

    let pool = HttpPool::new(PoolSettings {
        trusted_ca_pem: srv.ca_pem.clone(),
        ..fast_settings()
    });
    let res = one(&pool, get(format!("{}/json", srv.https_url)));
    assert!(res.ok(), "{}", res.error_message);
    assert_eq!(res.http_version, "HTTP/2");

    let pool = HttpPool::new(PoolSettings {
        verify_tls: false,
        ..fast_settings()
    });
    assert!(one(&pool, get(format!("{}/json", srv.https_url))).ok());

    let pool = HttpPool::new(PoolSettings {
        trusted_ca_pem: "garbage".into(),
        ..fast_settings()
    });
    assert!(pool.client_error().unwrap().contains("trusted_ca_pem"));
}

#[test]
fn sequential_requests_reuse_connections() {
    let srv = server();
    let pool = HttpPool::new(fast_settings());
    srv.reset_stats();
    for _ in 0..50 {
        assert!(one(&pool, get(format!("{}/json", srv.http_url))).ok());
    }
    assert_eq!(srv.stats().http_connections, 1);
}

#[test]
fn dropping_the_pool_cancels_without_delivering() {
    let srv = server();
    let pool = HttpPool::new(PoolSettings {
        max_concurrent: 4,
        ..fast_settings()
    });
    for _ in 0..20 {
        pool.submit(Ok(get(format!("{}/delay?ms=500", srv.http_url))));
    }
    std::thread::sleep(Duration::from_millis(50));
    drop(pool);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(srv.stats().in_flight, 0, "in-flight requests are aborted");
    let other = HttpPool::new(fast_settings());
    assert!(one(&other, get(format!("{}/json", srv.http_url))).ok());
}
