//! Free ports for a service started later: one copy, shared by the
//! `latchkey-tests` crate and the `latchkey` binary's tests (which include
//! this file by path).

use std::net::TcpListener;

/// `N` distinct ports of 127.0.0.1 nobody listened on a moment ago, for a
/// service started later to bind. They are drawn from below the kernel's
/// ephemeral range (`net.ipv4.ip_local_port_range`), which the kernel never
/// hands to an outgoing connection: an ephemeral port, released here, could
/// be taken by one of the many connections parallel tests open (to
/// PostgreSQL, Redis, the services) before the service binds it, and the
/// service would exit with "address already in use". All are held until
/// every one is chosen, so none comes back twice.
pub(crate) fn free_ports<const N: usize>() -> [u16; N] {
    use std::hash::{BuildHasher, RandomState};

    const LOWEST: u16 = 20_000;
    let below = ephemeral_range_start().filter(|start| *start > LOWEST + 1_000);
    let Some(below) = below else {
        // An unusual range: ports from the kernel, as before.
        let listeners: [TcpListener; N] =
            std::array::from_fn(|_| TcpListener::bind("127.0.0.1:0").expect("an ephemeral port"));
        return listeners.map(|listener| listener.local_addr().expect("its address").port());
    };
    let random = RandomState::new();
    let mut held: Vec<(u16, TcpListener)> = Vec::with_capacity(N);
    for attempt in 0u64.. {
        if held.len() == N {
            break;
        }
        assert!(
            attempt < 100_000,
            "no free port between {LOWEST} and {below}"
        );
        let offset = random.hash_one(attempt) % u64::from(below - LOWEST);
        let port = LOWEST + u16::try_from(offset).expect("below a u16");
        if held.iter().any(|(taken, _)| *taken == port) {
            continue;
        }
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            held.push((port, listener));
        }
    }
    std::array::from_fn(|index| held[index].0)
}

/// The first port of the kernel's ephemeral range, where it says.
fn ephemeral_range_start() -> Option<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
