//! rmcp's reqwest client for an `auth = "oauth"` upstream: every request
//! carries the calling user's access token from the vault (refreshed when
//! near expiry), and a `401` is answered once by refreshing and sending the
//! request again ([`super::tokens`]); a `403 insufficient_scope` is noted
//! for a step-up ([`super::step_up`]). The token never appears anywhere
//! else: not in the transport's configuration, not in logs.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use futures::stream::BoxStream;
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
};
use sse_stream::Sse;

use super::UpstreamOAuth;

#[derive(Clone)]
pub struct OAuthClient {
    pub inner: reqwest::Client,
    pub oauth: Arc<UpstreamOAuth>,
    pub user_id: String,
    pub upstream: String,
}

type HttpResult<T> = Result<T, StreamableHttpError<reqwest::Error>>;

impl OAuthClient {
    /// The user's token for a request to `uri` (only ever the one issued
    /// for that URL: `super::upstreams`).
    async fn token(&self, uri: &str, refused: Option<&str>) -> HttpResult<String> {
        self.oauth
            .access_token(&self.user_id, &self.upstream, uri, refused)
            .await
            .map_err(|e| {
                StreamableHttpError::UnexpectedServerResponse(Cow::Owned(format!(
                    "no usable token for this user: {e}"
                )))
            })
    }
}

impl OAuthClient {
    /// Notes a `403 insufficient_scope` for a step-up (`super::step_up`).
    fn step_up_on<T>(&self, r: HttpResult<T>) -> HttpResult<T> {
        if let Err(StreamableHttpError::InsufficientScope(e)) = &r {
            self.oauth.note_insufficient_scope(
                &self.user_id,
                &self.upstream,
                e.get_required_scope(),
            );
        }
        r
    }
}

impl StreamableHttpClient for OAuthClient {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> HttpResult<StreamableHttpPostResponse> {
        let token = self.token(&uri, None).await?;
        match self
            .inner
            .post_message(
                uri.clone(),
                message.clone(),
                session_id.clone(),
                Some(token.clone()),
                custom_headers.clone(),
            )
            .await
        {
            Err(StreamableHttpError::AuthRequired(_)) => {
                let token = self.token(&uri, Some(&token)).await?;
                let r = self
                    .inner
                    .post_message(uri, message, session_id, Some(token), custom_headers)
                    .await;
                self.step_up_on(r)
            }
            other => self.step_up_on(other),
        }
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> HttpResult<()> {
        let token = self.token(&uri, None).await?;
        self.inner
            .delete_session(uri, session_id, Some(token), custom_headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> HttpResult<BoxStream<'static, Result<Sse, SseError>>> {
        let token = self.token(&uri, None).await?;
        match self
            .inner
            .get_stream(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                Some(token.clone()),
                custom_headers.clone(),
            )
            .await
        {
            Err(StreamableHttpError::AuthRequired(_)) => {
                let token = self.token(&uri, Some(&token)).await?;
                self.inner
                    .get_stream(uri, session_id, last_event_id, Some(token), custom_headers)
                    .await
            }
            other => other,
        }
    }
}
