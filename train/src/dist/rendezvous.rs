//! A small TCP key-value store at MASTER_ADDR:MASTER_PORT (torchrun's TCPStore, reduced to
//! `set` and a blocking `get`), through which ranks started by `kiln launch` exchange the names
//! MPI needs to join them (the MPI port name, the ompi-server address) or NCCL's unique id. It
//! carries names only: tensors travel through MPI or NCCL.

use super::group::ProcessGroup;
use crate::{Error, Result};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The values set so far, and a signal for the `get`s waiting on them.
#[derive(Default)]
struct Table {
    values: Mutex<HashMap<String, String>>,
    changed: Condvar,
}

impl Table {
    fn set(&self, key: String, value: String) {
        let mut v = self.values.lock().unwrap_or_else(|e| e.into_inner());
        v.insert(key, value);
        self.changed.notify_all();
    }

    fn get(&self, key: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut v = self.values.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(value) = v.get(key) {
                return Some(value.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            v = self
                .changed
                .wait_timeout(v, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// One side of the rendezvous: the host (rank 0, serving the table from threads) or a client.
pub struct Store(Side);

enum Side {
    /// Rank 0: the table itself, served to the others on a listening socket.
    Host(Arc<Table>),
    /// Any other rank: a connection to the host.
    Client(Mutex<BufReader<TcpStream>>),
}

/// How long a rank waits for the host or for a key (other ranks may still be starting).
pub const TIMEOUT: Duration = Duration::from_secs(300);

impl Store {
    /// Serves a store on `port` (all interfaces) from a background thread.
    pub fn host(port: u16) -> Result<Store> {
        let listener = TcpListener::bind(("0.0.0.0", port))
            .map_err(|e| Error::Dist(format!("rendezvous: cannot listen on port {port}: {e}")))?;
        let table = Arc::new(Table::default());
        let shared = table.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let table = shared.clone();
                std::thread::spawn(move || serve(conn, &table));
            }
        });
        Ok(Store(Side::Host(table)))
    }

    /// Connects to the store at `addr:port`, retrying while the host starts.
    pub fn connect(addr: &str, port: u16) -> Result<Store> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match TcpStream::connect((addr, port)) {
                Ok(s) => return Ok(Store(Side::Client(Mutex::new(BufReader::new(s))))),
                Err(e) if Instant::now() > deadline => {
                    return Err(Error::Dist(format!(
                        "rendezvous: cannot reach MASTER_ADDR:MASTER_PORT = {addr}:{port}: {e}"
                    )))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Sets `key` (one line of text, no spaces in the key).
    pub fn set(&self, key: &str, value: &str) -> Result<()> {
        match &self.0 {
            Side::Host(t) => {
                t.set(key.into(), value.into());
                Ok(())
            }
            Side::Client(c) => request(c, &format!("SET {key} {value}"), key).map(|_| ()),
        }
    }

    /// The value of `key`, waiting until some rank sets it.
    pub fn get(&self, key: &str) -> Result<String> {
        match &self.0 {
            Side::Host(t) => t
                .get(key, TIMEOUT)
                .ok_or_else(|| Error::Dist(format!("rendezvous: no rank set {key} in time"))),
            Side::Client(c) => request(c, &format!("GET {key}"), key),
        }
    }
}

/// The rendezvous of a torchrun-style job: hosted by rank 0 at MASTER_PORT (under torchrun
/// itself, whose own store holds MASTER_PORT, at MASTER_PORT + 1), joined by the others.
pub fn join(group: &ProcessGroup) -> Result<Store> {
    let Some((addr, port)) = &group.master else {
        return Err(Error::Dist(
            "RANK and WORLD_SIZE are set but MASTER_ADDR or MASTER_PORT is not".into(),
        ));
    };
    let port = match std::env::var_os("TORCHELASTIC_RUN_ID") {
        Some(_) => port.checked_add(1).unwrap_or(*port),
        None => *port,
    };
    if group.rank == 0 {
        Store::host(port)
    } else {
        Store::connect(addr, port)
    }
}

/// Sends one request line and reads the one-line answer.
fn request(conn: &Mutex<BufReader<TcpStream>>, line: &str, key: &str) -> Result<String> {
    let fail = |e: std::io::Error| Error::Dist(format!("rendezvous: {key}: {e}"));
    let mut c = conn.lock().unwrap_or_else(|e| e.into_inner());
    writeln!(c.get_mut(), "{line}").map_err(fail)?;
    let mut answer = String::new();
    c.read_line(&mut answer).map_err(fail)?;
    match answer.trim_end_matches('\n').split_once(' ') {
        Some(("OK", value)) => Ok(value.to_string()),
        _ => Err(Error::Dist(format!(
            "rendezvous: {key}: the host answered {answer:?} (it may have exited)"
        ))),
    }
}

/// Answers one client's requests until it disconnects.
fn serve(conn: TcpStream, table: &Table) {
    let Ok(write) = conn.try_clone() else { return };
    let mut write = write;
    for line in BufReader::new(conn).lines() {
        let Ok(line) = line else { return };
        let answer = match line.split_once(' ') {
            Some(("SET", rest)) => {
                let (k, v) = rest.split_once(' ').unwrap_or((rest, ""));
                table.set(k.into(), v.into());
                "OK ".to_string()
            }
            Some(("GET", k)) => match table.get(k, TIMEOUT) {
                Some(v) => format!("OK {v}"),
                None => "TIMEOUT ".into(),
            },
            _ => "BAD ".into(),
        };
        if writeln!(write, "{answer}").is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_get_what_others_set() {
        let port = {
            let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
            l.local_addr().unwrap().port()
        };
        let host = Store::host(port).unwrap();
        let waiter = std::thread::spawn(move || {
            Store::connect("127.0.0.1", port)
                .unwrap()
                .get("port-name")
                .unwrap()
        });
        let client = Store::connect("127.0.0.1", port).unwrap();
        client.set("port-name", "1672.0:34 tcp://x").unwrap();
        assert_eq!(waiter.join().unwrap(), "1672.0:34 tcp://x");
        host.set("uri", "u").unwrap();
        assert_eq!(client.get("uri").unwrap(), "u");
        assert_eq!(host.get("port-name").unwrap(), "1672.0:34 tcp://x");
    }
}
