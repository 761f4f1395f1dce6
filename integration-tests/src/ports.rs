//! Free loopback ports.
//!
//! We bind `127.0.0.1:0`, read the port the kernel chose, and drop the listener, then hand the
//! port to a child process. Between the drop and the child's bind another process may take the
//! port (a small race, rare because the kernel hands out ephemeral ports round-robin). Starters
//! therefore retry once with a new port when the child reports "address already in use".

use std::net::{Ipv4Addr, TcpListener};

use anyhow::{Context as _, Result};

/// A loopback TCP port that was free a moment ago (see the module docs for the race).
pub fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Whether a child's log says it could not bind its port, so a retry on a new port may help.
pub fn log_says_address_in_use(log: &str) -> bool {
    let log = log.to_ascii_lowercase();
    log.contains("address already in use")
        || log.contains("addrinuse")
        || log.contains("address in use")
}
