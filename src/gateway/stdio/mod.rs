//! The transport of a stdio upstream (a child process speaking MCP on its
//! stdin and stdout, MCP "Transports", stdio), mcpgate's own beneath
//! rmcp's client session.
//!
//! - [`outbox`]: stdin, written by one task that batches what has queued.
//! - [`routed`]: stdout as rmcp's reader sees it, less the answers to lane
//!   calls.
//! - [`lane`]: tool calls written from the calling task and answered by
//!   id, without rmcp's service task in between (the gateway's hot path).
//!
//! rmcp still runs the session: `initialize`, the upstream's requests and
//! notifications, and every request the gateway does not send on the lane
//! go through its service over the same pipes, parsed and framed by its own
//! line codec. [`StdioTransport::close`] follows the shutdown sequence of
//! the MCP stdio transport: close stdin, wait for the process to exit,
//! then `SIGTERM`, then `SIGKILL` (as rmcp's `TokioChildProcess` did); a
//! transport dropped without closing kills the process.

pub mod lane;
pub mod outbox;
pub mod routed;
#[cfg(test)]
mod tests;

use std::io;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use rmcp::RoleClient;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::transport::async_rw::AsyncRwTransport;
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

use crate::gateway::relay::RelayState;
use lane::Lane;
use outbox::{Outbox, OutboxWriter};
use routed::Routed;

/// How long the process gets to exit after stdin is closed, and again
/// after `SIGTERM`.
const EXIT_WAIT: Duration = Duration::from_secs(3);

pub struct StdioTransport {
    inner: AsyncRwTransport<RoleClient, Routed<ChildStdout>, OutboxWriter>,
    child: Option<Child>,
}

/// Starts `cmd` with piped stdio; returns its transport, its lane and its
/// stderr. `cmd` should be set to kill the process on drop.
pub fn spawn(
    mut cmd: Command,
    relay: Arc<RelayState>,
) -> io::Result<(StdioTransport, Arc<Lane>, Option<ChildStderr>)> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(io::Error::other("the child's stdio was not piped"));
    };
    let stderr = child.stderr.take();
    let outbox = Outbox::start(stdin);
    let lane = Lane::new(outbox.clone(), relay);
    let inner = AsyncRwTransport::new(Routed::new(stdout, lane.clone()), OutboxWriter(outbox));
    Ok((
        StdioTransport {
            inner,
            child: Some(child),
        },
        lane,
        stderr,
    ))
}

impl Transport<RoleClient> for StdioTransport {
    type Error = io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    fn receive(&mut self) -> impl Future<Output = Option<RxJsonRpcMessage<RoleClient>>> + Send {
        self.inner.receive()
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.inner.close().await?;
        if let Some(mut child) = self.child.take() {
            shut_down(&mut child).await;
        }
        Ok(())
    }
}

/// Waits for a child whose stdin is closed to exit; `SIGTERM`, then
/// `SIGKILL`, if it does not.
async fn shut_down(child: &mut Child) {
    if exited(child).await {
        return;
    }
    #[cfg(unix)]
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: `kill(2)` takes plain integers and touches no memory of
        // ours; the pid is our child's, not yet waited for (so not reused).
        if unsafe { libc::kill(pid, libc::SIGTERM) } == 0 && exited(child).await {
            return;
        }
    }
    if let Err(e) = child.kill().await {
        tracing::warn!(error = %e, "killing an upstream process failed");
    }
}

async fn exited(child: &mut Child) -> bool {
    match tokio::time::timeout(EXIT_WAIT, child.wait()).await {
        Ok(Ok(status)) => {
            tracing::debug!(%status, "upstream process exited");
            true
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "waiting for an upstream process failed");
            false
        }
        Err(_) => false,
    }
}
