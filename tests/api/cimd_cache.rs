//! Client ID Metadata Documents: the store-backed cache. One fetch for
//! many requests, `Cache-Control: max-age` honoured within 5 minutes to
//! 24 hours, a stale copy served while the client's host is down (for a
//! day at most), and no stampede on a document nobody fetched yet.

use reqwest::StatusCode;

use crate::cimd::{DOC, claude_doc, claude_setup, open, refused_page};
use crate::helpers::spawn_app_with;
use crate::https_support::HttpsServer;

const CB: &str = "http://localhost:5000/callback";

#[tokio::test]
async fn many_authorizations_make_one_fetch() {
    let (server, app, id) = claude_setup().await;
    let opened = futures::future::join_all((0..8).map(|_| open(&app, &id, CB))).await;
    for (status, html) in opened {
        assert_eq!(status, StatusCode::OK, "{html}");
    }
    for _ in 0..4 {
        assert_eq!(open(&app, &id, CB).await.0, StatusCode::OK);
    }
    assert_eq!(server.hits(DOC), 1);
}

#[tokio::test]
async fn max_age_is_honoured() {
    let (server, app, id) = claude_setup().await; // max-age=600
    assert_eq!(open(&app, &id, CB).await.0, StatusCode::OK);
    app.clock.advance(590);
    assert_eq!(open(&app, &id, CB).await.0, StatusCode::OK);
    assert_eq!(server.hits(DOC), 1, "still fresh");
    app.clock.advance(20);
    assert_eq!(open(&app, &id, CB).await.0, StatusCode::OK);
    assert_eq!(server.hits(DOC), 2, "stale: fetched again");
}

#[tokio::test]
async fn max_age_is_clamped_to_five_minutes_and_a_day() {
    let server = HttpsServer::start().await;
    let short = server.url("/short.json");
    let long = server.url("/long.json");
    server.json(
        "/short.json",
        &claude_doc(&short),
        &[("cache-control", "max-age=5")],
    );
    server.json(
        "/long.json",
        &claude_doc(&long),
        &[("cache-control", "max-age=31536000")],
    );
    let app = spawn_app_with(|s| server.trust(s)).await;
    for id in [&short, &long] {
        assert_eq!(open(&app, id, CB).await.0, StatusCode::OK);
    }
    app.clock.advance(290);
    for id in [&short, &long] {
        assert_eq!(open(&app, id, CB).await.0, StatusCode::OK);
    }
    assert_eq!(server.hits("/short.json"), 1, "5 s is raised to 5 minutes");
    app.clock.advance(20);
    assert_eq!(open(&app, &short, CB).await.0, StatusCode::OK);
    assert_eq!(server.hits("/short.json"), 2);
    app.clock.advance(24 * 3600 - 320);
    assert_eq!(open(&app, &long, CB).await.0, StatusCode::OK);
    assert_eq!(server.hits("/long.json"), 1, "a year is lowered to a day");
    app.clock.advance(60);
    assert_eq!(open(&app, &long, CB).await.0, StatusCode::OK);
    assert_eq!(server.hits("/long.json"), 2);
}

#[tokio::test]
async fn no_store_means_the_shortest_freshness() {
    let server = HttpsServer::start().await;
    let id = server.url(DOC);
    server.json(DOC, &claude_doc(&id), &[("cache-control", "no-store")]);
    let app = spawn_app_with(|s| server.trust(s)).await;
    assert_eq!(open(&app, &id, CB).await.0, StatusCode::OK);
    app.clock.advance(299);
    assert_eq!(open(&app, &id, CB).await.0, StatusCode::OK);
    assert_eq!(server.hits(DOC), 1);
    app.clock.advance(2);
    assert_eq!(open(&app, &id, CB).await.0, StatusCode::OK);
    assert_eq!(server.hits(DOC), 2);
}

#[tokio::test]
async fn a_stale_copy_is_served_while_the_host_is_down_for_a_day_at_most() {
    let (mut server, app, id) = claude_setup().await; // max-age=600
    assert_eq!(open(&app, &id, CB).await.0, StatusCode::OK);
    server.stop().await;
    app.clock.advance(3600);
    let (status, html) = open(&app, &id, CB).await;
    assert_eq!(status, StatusCode::OK, "stale copy served: {html}");
    // Past freshness + 24 h: refused.
    app.clock.advance(24 * 3600);
    refused_page(&app, &id, CB, &["could not fetch", "127.0.0.1"]).await;
    // Back up: fetched again and accepted.
    server.restart().await;
    assert_eq!(open(&app, &id, CB).await.0, StatusCode::OK);
    assert_eq!(server.hits(DOC), 2);
}

#[tokio::test]
async fn a_host_answering_an_error_is_unreachable_but_a_missing_document_is_refused() {
    let (server, app, id) = claude_setup().await;
    assert_eq!(open(&app, &id, CB).await.0, StatusCode::OK);
    app.clock.advance(700);
    server.route(DOC, crate::https_support::Route::status(503));
    assert_eq!(
        open(&app, &id, CB).await.0,
        StatusCode::OK,
        "5xx: stale served"
    );
    server.route(DOC, crate::https_support::Route::status(404));
    refused_page(&app, &id, CB, &["404"]).await;
}

#[tokio::test]
async fn a_document_never_fetched_is_refused_while_its_host_is_down() {
    let mut server = HttpsServer::start().await;
    let id = server.url(DOC);
    server.json(DOC, &claude_doc(&id), &[]);
    let app = spawn_app_with(|s| server.trust(s)).await;
    server.stop().await;
    refused_page(&app, &id, CB, &["could not fetch", "connection failed"]).await;
}

#[tokio::test]
async fn a_changed_document_replaces_the_cached_one_when_stale() {
    let (server, app, id) = claude_setup().await;
    assert_eq!(open(&app, &id, CB).await.0, StatusCode::OK);
    let mut doc = claude_doc(&id);
    doc["redirect_uris"] = serde_json::json!(["http://localhost/other"]);
    server.json(DOC, &doc, &[]);
    assert_eq!(
        open(&app, &id, CB).await.0,
        StatusCode::OK,
        "fresh copy still used"
    );
    app.clock.advance(601);
    refused_page(&app, &id, CB, &["redirect URI mismatch"]).await;
    let (status, _) = open(&app, &id, "http://localhost:5000/other").await;
    assert_eq!(status, StatusCode::OK);
}
