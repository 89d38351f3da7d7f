//! Binding a listening socket with an accept queue deep enough for a burst of clients.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::{TcpListener, TcpSocket};

/// Pending connections the kernel may hold before the service accepts them (the kernel caps it
/// at `net.core.somaxconn`). Tokio's default of 1,024 overflows when thousands of viewers or
/// broadcasters reconnect at once: the kernel then drops their handshake's last packet and the
/// client waits for a retransmission seconds later.
pub const ACCEPT_BACKLOG: u32 = 4_096;

/// A listener on `addr` with [`ACCEPT_BACKLOG`] and address reuse, so a restarted service can
/// bind again while its old connections linger in `TIME_WAIT`.
pub fn listen(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let bound = || -> std::io::Result<TcpListener> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(ACCEPT_BACKLOG)
    };
    bound().with_context(|| format!("cannot listen on {addr}"))
}
