//! Management requests to a service manager: what `plughost services` and
//! `plughost cmd-proc` (the old command processor) send.
//!
//! Each client is a DEALER whose socket identity is its own uuid and whose
//! requests come From `Command Processor:<uuid>`, so the manager accepts
//! them without knowing the manager's uuid in advance (WIRE.md
//! "Authenticity": From uuid = sender identity).

use std::time::Duration;

use zeromq::{DealerSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

use super::{manager::LIST_JSON, registry::ServiceInfo, TrackerError};
use plughost_proto::{
    address::RawAddress,
    raw::{MgmtCommand, RawRequest, RawResponse},
    uid::Uid,
};

/// A connection to a manager's management endpoint.
pub struct ManagementClient {
    socket: DealerSocket,
    address: RawAddress,
    endpoint: String,
    timeout: Duration,
}

impl ManagementClient {
    /// Connects to `endpoint` (e.g. `tcp://127.0.0.1:6666`).
    pub async fn connect(endpoint: &str, timeout: Duration) -> Result<Self, TrackerError> {
        let uid = Uid::new_v4();
        let address = RawAddress::new("Command Processor", uid)
            .map_err(|e| TrackerError::Protocol(e.to_string()))?;
        let mut socket = super::dealer_with_identity(uid)?;
        let connect = socket.connect(endpoint);
        match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(TrackerError::Connect {
                    endpoint: endpoint.to_owned(),
                    reason: e.to_string(),
                })
            }
            Err(_) => {
                return Err(TrackerError::Timeout {
                    endpoint: endpoint.to_owned(),
                    timeout_ms: timeout.as_millis() as u64,
                })
            }
        }
        Ok(Self {
            socket,
            address,
            endpoint: endpoint.to_owned(),
            timeout,
        })
    }

    /// Sends one management command and waits for its answer.
    pub async fn request(&mut self, command: &str) -> Result<RawResponse, TrackerError> {
        let request = RawRequest::new(self.address.clone(), None, ["mgmt", command]);
        let timeout = || TrackerError::Timeout {
            endpoint: self.endpoint.clone(),
            timeout_ms: self.timeout.as_millis() as u64,
        };
        let exchange = async {
            self.socket
                .send(ZmqMessage::from(request.serialize()))
                .await
                .map_err(|e| TrackerError::Connect {
                    endpoint: self.endpoint.clone(),
                    reason: e.to_string(),
                })?;
            loop {
                let message = self
                    .socket
                    .recv()
                    .await
                    .map_err(|e| TrackerError::Protocol(e.to_string()))?;
                let frames = message.into_vec();
                match RawResponse::parse_frames(frames.iter()) {
                    Ok(response) if response.id() == request.id() => return Ok(response),
                    _ => continue, // an answer to an earlier, timed-out request
                }
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| timeout())?
    }

    /// The v1 listing text.
    pub async fn list_text(&mut self) -> Result<String, TrackerError> {
        let response = self.request(&MgmtCommand::List.to_string()).await?;
        Ok(response
            .trimmed_body()
            .iter()
            .map(|l| format!("{l}\n"))
            .collect())
    }

    /// The listing as structured entries (v2 form).
    pub async fn list(&mut self) -> Result<Vec<ServiceInfo>, TrackerError> {
        let response = self.request(LIST_JSON).await?;
        let body = response.trimmed_body().join("");
        serde_json::from_str(&body)
            .map_err(|e| TrackerError::Protocol(format!("manager's JSON listing: {e}")))
    }

    /// Asks the manager to stop a service; returns the manager's answer.
    pub async fn stop(&mut self, uid: Uid) -> Result<RawResponse, TrackerError> {
        self.request(&MgmtCommand::Stop(uid).to_string()).await
    }

    /// Asks the manager to shut down (refused without the right token).
    pub async fn shutdown(&mut self, token: Option<&str>) -> Result<RawResponse, TrackerError> {
        match token {
            Some(token) => self.request(&format!("e {token}")).await,
            None => self.request("e").await,
        }
    }
}
