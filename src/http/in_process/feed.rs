//! The feed between servers on one database: a server past its lease reads what others
//! wrote before it answers.

use crate::ops;

use super::harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_lease_a_server_reads_the_feed_before_it_answers() {
    let h = harness().await;
    let owner = h.owner().await;
    let victim = h.owner().await;
    let me = h.call("GET", "/api/auth/me/", Some(&owner), None).await;
    assert_eq!(me.status, 200);
    let user_id = me.body["id"].as_i64().unwrap();
    // The lease ran out: this server could not publish its position (say, the database
    // refuses writes). Another server then revokes the second session; this one has not
    // read that change.
    h.app.auth.live.current_until(ops::feed::mono_ms() - 1);
    h.app
        .store
        .write(move |tx| {
            let newest = crate::store::sessions::live_for_user(tx, user_id)?
                .into_iter()
                .map(|s| s.id)
                .max()
                .unwrap();
            crate::store::sessions::revoke(tx, newest)?;
            crate::store::feed::append(tx, crate::store::feed::Kind::Session, newest)?;
            Ok(())
        })
        .await
        .unwrap();
    // It reads the feed itself before answering: the revoked session is refused at once,
    // the other one still works, and it is ready.
    let refused = h.call("GET", "/api/auth/me/", Some(&victim), None).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    let kept = h.call("GET", "/api/auth/me/", Some(&owner), None).await;
    assert_eq!(kept.status, 200, "{}", kept.body);
    assert_eq!(h.call("GET", "/readyz", None, None).await.status, 200);

    // When the feed cannot be read either, it cannot know what it missed: it refuses every
    // authenticated request and is not ready, at once (no request waits for the database
    // that has just failed), until the follower's next poll reads the feed again.
    let database = h.app.config.database.path(&h.app.config.server);
    let other = rusqlite::Connection::open(&database).unwrap();
    other
        .execute_batch("ALTER TABLE feed_head RENAME TO feed_head_away")
        .unwrap();
    let refused = h.call("GET", "/api/auth/me/", Some(&owner), None).await;
    assert_eq!(
        (refused.status, refused.body["error"].as_str()),
        (503, Some("unavailable"))
    );
    assert_eq!(h.call("GET", "/readyz", None, None).await.status, 503);
    assert_eq!(h.call("GET", "/healthz", None, None).await.status, 200);
    other
        .execute_batch("ALTER TABLE feed_head_away RENAME TO feed_head")
        .unwrap();
    // Until a poll of the feed works, the refusal stands without another try.
    let refused = h.call("GET", "/api/auth/me/", Some(&owner), None).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(ops::feed::read_feed(&h.app).await.is_ok());
    assert_eq!(h.call("GET", "/readyz", None, None).await.status, 200);
    let back = h.call("GET", "/api/auth/me/", Some(&owner), None).await;
    assert_eq!(back.status, 200, "{}", back.body);
}
