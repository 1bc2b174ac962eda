//! A TCP proxy for fault tests: forwards loopback connections to a target and can cut them,
//! stall them (stop forwarding without closing, like a dead network path), or add delay.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The proxy; stops accepting when dropped.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    target: SocketAddr,
    stalled: AtomicBool,
    refuse: AtomicBool,
    delay_ms: AtomicU64,
    open: Mutex<Vec<TcpStream>>,
    stop: AtomicBool,
    /// What clients sent towards the target (capped at [`RECORD_CAP`]).
    sent: Mutex<Vec<u8>>,
}

/// Most bytes [`Proxy::sent`] keeps.
const RECORD_CAP: usize = 1 << 20;

impl Proxy {
    /// Starts forwarding a free loopback port to `target`.
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared {
            target,
            stalled: AtomicBool::new(false),
            refuse: AtomicBool::new(false),
            delay_ms: AtomicU64::new(0),
            open: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            sent: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = conn else { continue };
                if s.refuse.load(Ordering::Relaxed) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(upstream) = TcpStream::connect(s.target) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                if let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) {
                    if let Ok(mut open) = s.open.lock() {
                        open.push(c2);
                        open.push(u2);
                    }
                }
                pipe(&s, &client, &upstream, true);
                pipe(&s, &upstream, &client, false);
            }
        });
        Proxy { addr, shared }
    }

    /// Closes every open connection (new ones are still accepted).
    pub fn cut(&self) {
        if let Ok(mut open) = self.shared.open.lock() {
            for c in open.drain(..) {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
    }

    /// Stops (true) or resumes (false) forwarding bytes, without closing anything.
    pub fn stall(&self, on: bool) {
        self.shared.stalled.store(on, Ordering::Relaxed);
    }

    /// Refuses (closes at once) new connections while `on`.
    pub fn refuse(&self, on: bool) {
        self.shared.refuse.store(on, Ordering::Relaxed);
    }

    /// The first MiB that clients sent towards the target, across all connections.
    pub fn sent(&self) -> Vec<u8> {
        self.shared
            .sent
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Adds `ms` of delay to every forwarded chunk.
    pub fn delay(&self, ms: u64) {
        self.shared.delay_ms.store(ms, Ordering::Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.cut();
        let _ = TcpStream::connect(self.addr);
    }
}

fn pipe(s: &Arc<Shared>, from: &TcpStream, to: &TcpStream, record: bool) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    let s = s.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // While stalled, hold the bytes (a black hole that keeps the connection open).
            while s.stalled.load(Ordering::Relaxed) && !s.stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
            }
            if record {
                if let Ok(mut sent) = s.sent.lock() {
                    let room = RECORD_CAP.saturating_sub(sent.len()).min(n);
                    sent.extend_from_slice(&buf[..room]);
                }
            }
            let d = s.delay_ms.load(Ordering::Relaxed);
            if d > 0 {
                std::thread::sleep(Duration::from_millis(d));
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
