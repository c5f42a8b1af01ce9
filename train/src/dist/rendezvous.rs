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

/// One side of the rendezvous: the host (rank 0, serving the table from threads) or a client,
/// and how long it waits for the host or a key.
pub struct Store {
    side: Side,
    timeout: Duration,
}

enum Side {
    /// Rank 0: the table itself, served to the others on a listening socket.
    Host(Arc<Table>),
    /// Any other rank: a connection to the host.
    Client(Mutex<BufReader<TcpStream>>),
}

impl Store {
    /// Serves a store on `port` (all interfaces) from a background thread; a `get` waits up to
    /// `timeout` for its key (other ranks may still be starting).
    pub fn host(port: u16, timeout: Duration) -> Result<Store> {
        let listener = TcpListener::bind(("0.0.0.0", port))
            .map_err(|e| Error::Dist(format!("rendezvous: cannot listen on port {port}: {e}")))?;
        let table = Arc::new(Table::default());
        let shared = table.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let table = shared.clone();
                std::thread::spawn(move || serve(conn, &table, timeout));
            }
        });
        Ok(Store {
            side: Side::Host(table),
            timeout,
        })
    }

    /// Connects to the store at `addr:port`, retrying up to `timeout` while the host starts.
    pub fn connect(addr: &str, port: u16, timeout: Duration) -> Result<Store> {
        let deadline = Instant::now() + timeout;
        loop {
            match TcpStream::connect((addr, port)) {
                Ok(s) => {
                    // The host answers a `get` within its own timeout; a few seconds more cover
                    // the network, and a host that stopped answering is not waited for forever.
                    s.set_read_timeout(Some(timeout + Duration::from_secs(5)))
                        .map_err(|e| Error::Dist(format!("rendezvous: {e}")))?;
                    return Ok(Store {
                        side: Side::Client(Mutex::new(BufReader::new(s))),
                        timeout,
                    });
                }
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
        match &self.side {
            Side::Host(t) => {
                t.set(key.into(), value.into());
                Ok(())
            }
            Side::Client(c) => request(c, &format!("SET {key} {value}"), key).map(|_| ()),
        }
    }

    /// The value of `key`, waiting until some rank sets it.
    pub fn get(&self, key: &str) -> Result<String> {
        match &self.side {
            Side::Host(t) => t.get(key, self.timeout).ok_or_else(|| {
                Error::Dist(format!(
                    "rendezvous: no rank set {key} within {:?}",
                    self.timeout
                ))
            }),
            Side::Client(c) => request(c, &format!("GET {key}"), key),
        }
    }
}

/// The variable through which `kiln launch --rdzv-id` gives its ranks the job's id.
pub const RUN_ID_VAR: &str = "KILN_RDZV_ID";

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
    let store = match group.rank {
        0 => Store::host(port, group.timeout)?,
        _ => Store::connect(addr, port, group.timeout)?,
    };
    check_run_id(
        &store,
        group.rank,
        &std::env::var(RUN_ID_VAR).unwrap_or_default(),
    )?;
    Ok(store)
}

/// Rank 0 publishes its job id (`--rdzv-id`, or none); any other rank with another id fails:
/// it reached another job's rendezvous.
fn check_run_id(store: &Store, rank: usize, mine: &str) -> Result<()> {
    const KEY: &str = "kiln-run-id";
    if rank == 0 {
        return store.set(KEY, mine);
    }
    let theirs = store.get(KEY)?;
    match theirs == mine {
        true => Ok(()),
        false => Err(Error::Dist(format!(
            "rendezvous: this rank's --rdzv-id is {mine:?} but rank 0's is {theirs:?}: another \
             job holds MASTER_ADDR:MASTER_PORT"
        ))),
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
fn serve(conn: TcpStream, table: &Table, timeout: Duration) {
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
            Some(("GET", k)) => match table.get(k, timeout) {
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
        let t = Duration::from_secs(60);
        let host = Store::host(port, t).unwrap();
        let waiter = std::thread::spawn(move || {
            Store::connect("127.0.0.1", port, t)
                .unwrap()
                .get("port-name")
                .unwrap()
        });
        let client = Store::connect("127.0.0.1", port, t).unwrap();
        client.set("port-name", "1672.0:34 tcp://x").unwrap();
        assert_eq!(waiter.join().unwrap(), "1672.0:34 tcp://x");
        host.set("uri", "u").unwrap();
        check_run_id(&host, 0, "job-a").unwrap();
        check_run_id(&client, 1, "job-a").unwrap();
        let e = check_run_id(&client, 2, "job-b").unwrap_err().to_string();
        assert!(e.contains("\"job-b\" but rank 0's is \"job-a\""), "{e}");
        assert_eq!(client.get("uri").unwrap(), "u");
        assert_eq!(host.get("port-name").unwrap(), "1672.0:34 tcp://x");
    }
}
