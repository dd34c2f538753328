//! An upstream on 2026-07-28 asks its client in its result (SEP-2322
//! `InputRequiredResult`), not with requests. The gateway answers such a
//! result itself, for the downstream request that caused it (the origin is
//! certain: it is the answer to that request): each input request goes to
//! the downstream client as [`super::ask_downstream`] sends any upstream
//! request (a request on a 2025 client's session; for a 2026-07-28 client,
//! a question of the gateway's own `InputRequiredResult`, under the
//! upstream's key where it is a usable key), and the request is sent again
//! with the answers (`inputResponses`, keyed as the upstream keyed them)
//! and the upstream's `requestState`, echoed untouched. At most
//! [`MAX_ROUNDS`] rounds.

use futures::future::try_join_all;
use rmcp::ErrorData as McpError;
use rmcp::model::{
    ClientRequest, ClientResult, InputRequest, InputRequiredResult, InputResponses, ServerRequest,
};

use super::{Downstream, ask_downstream};

/// Rounds of one downstream request at most (rmcp's client default).
pub const MAX_ROUNDS: usize = rmcp::model::DEFAULT_MRTR_MAX_ROUNDS;

/// The answers to `result`'s input requests, asked of `d`; with the state
/// to echo.
pub async fn answer(
    d: Option<&Downstream>,
    result: InputRequiredResult,
) -> Result<(Option<InputResponses>, Option<String>), McpError> {
    let requests = result.input_requests.unwrap_or_default();
    if requests.is_empty() {
        return Ok((None, result.request_state));
    }
    let Some(d) = d else {
        return Err(McpError::invalid_request(
            "the upstream needs the client's input, and this request has no client to ask (a REST call)",
            None,
        ));
    };
    let answers = try_join_all(requests.into_iter().map(|(key, request)| async move {
        let request = match request {
            InputRequest::CreateMessage(r) => ServerRequest::CreateMessageRequest(r),
            InputRequest::Elicitation(r) => ServerRequest::ElicitRequest(r),
            InputRequest::ListRoots(r) => ServerRequest::ListRootsRequest(r),
            _ => {
                return Err(McpError::internal_error(
                    format!("the upstream asked for an unknown kind of input ({key:?})"),
                    None,
                ));
            }
        };
        let value = match ask_downstream(d, request, Some(key.clone())).await? {
            ClientResult::CreateMessageResult(r) => serde_json::to_value(r),
            ClientResult::ElicitResult(r) => serde_json::to_value(r),
            ClientResult::ListRootsResult(r) => serde_json::to_value(r),
            other => {
                return Err(McpError::internal_error(
                    format!("the client answered {key:?} with an unexpected result: {other:?}"),
                    None,
                ));
            }
        }
        .map_err(|e| McpError::internal_error(e.to_string(), None))?;
        Ok((key, value))
    }))
    .await?;
    Ok((Some(answers.into_iter().collect()), result.request_state))
}

/// `request` again, carrying `responses` and `state`; `None` for a method
/// that cannot be answered with an `InputRequiredResult`.
pub fn retry(
    request: &ClientRequest,
    responses: Option<InputResponses>,
    state: Option<String>,
) -> Option<ClientRequest> {
    let mut request = request.clone();
    match &mut request {
        ClientRequest::CallToolRequest(r) => {
            r.params.input_responses = responses;
            r.params.request_state = state;
        }
        ClientRequest::GetPromptRequest(r) => {
            r.params.input_responses = responses;
            r.params.request_state = state;
        }
        ClientRequest::ReadResourceRequest(r) => {
            r.params.input_responses = responses;
            r.params.request_state = state;
        }
        _ => return None,
    }
    Some(request)
}
