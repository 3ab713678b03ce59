//! What the `latchkey` binary tests share: a process killed when dropped,
//! and free ports to start it on.

use std::process::Child;

#[path = "../../../../tests/free_ports.rs"]
mod ports;
pub(crate) use ports::free_ports;

/// A running `latchkey dev`, killed and reaped when dropped.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
