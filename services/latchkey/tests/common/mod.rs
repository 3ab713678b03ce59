//! What the `latchkey` binary tests share: a process killed when dropped,
//! and free ports to start it on.

use std::net::TcpListener;
use std::process::Child;

/// A running `latchkey dev`, killed and reaped when dropped.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `N` distinct ports of 127.0.0.1 nobody listened on a moment ago. All
/// are held until every one is chosen: ports taken one at a time may come
/// back twice, and a service given one port for two listeners cannot start.
pub(crate) fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: [TcpListener; N] =
        std::array::from_fn(|_| TcpListener::bind("127.0.0.1:0").unwrap());
    listeners.map(|listener| listener.local_addr().unwrap().port())
}
