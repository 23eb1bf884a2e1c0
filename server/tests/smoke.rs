//! Smoke test: a node starts on port 0, answers PING and SET/GET, and shuts down.
mod common;

#[tokio::test]
async fn ping_set_get() {
    let node = common::TestNode::start().await;
    let mut raw = node.raw().await;
    assert_eq!(raw.cmd(&[b"PING"]).await, b"+PONG\r\n");
    assert_eq!(raw.cmd(&[b"SET", b"k", b"v"]).await, b"+OK\r\n");
    assert_eq!(raw.cmd(&[b"GET", b"k"]).await, b"$1\r\nv\r\n");
    let mut c = node.client().await;
    let v: Option<String> = redis::cmd("GET")
        .arg("k")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    node.stop().await;
}
