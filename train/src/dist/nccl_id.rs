//! NCCL's unique id (128 opaque bytes that rank 0 makes) carried to the other ranks through the
//! TCP rendezvous as one line of hex, as torchrun's store carries it for PyTorch.

use super::rendezvous::Store;
use crate::{Error, Result};

/// The bytes of an `ncclUniqueId`.
pub type UniqueId = [u8; 128];

/// The rendezvous key the id is set under.
const KEY: &str = "nccl-unique-id";

/// Rank 0 makes the id with `make` and publishes it; every other rank waits for it.
pub fn share(
    store: &Store,
    rank: usize,
    make: impl FnOnce() -> Result<UniqueId>,
) -> Result<UniqueId> {
    if rank == 0 {
        let id = make()?;
        store.set(KEY, &encode(&id))?;
        return Ok(id);
    }
    decode(&store.get(KEY)?)
}

/// The id as 256 lowercase hex digits.
pub fn encode(id: &UniqueId) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// The id back from [`encode`]'s text.
pub fn decode(text: &str) -> Result<UniqueId> {
    let bad = || Error::Dist(format!("rendezvous: {KEY} is not 256 hex digits: {text:?}"));
    if text.len() != 256 || !text.is_ascii() {
        return Err(bad());
    }
    let mut id = [0u8; 128];
    for (b, pair) in id.iter_mut().zip(text.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
        *b = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn the_id_crosses_the_rendezvous_between_two_threads_unchanged() {
        let port = {
            let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
            l.local_addr().unwrap().port()
        };
        // Every byte value, so no escaping or sign problem can hide.
        let made: UniqueId = std::array::from_fn(|i| (i * 2 + 1) as u8 ^ 0x80);
        let rank1 = std::thread::spawn(move || {
            let store = Store::connect("127.0.0.1", port, crate::dist::DEFAULT_TIMEOUT).unwrap();
            share(&store, 1, || panic!("rank 1 must not make an id")).unwrap()
        });
        let host = Store::host(port, crate::dist::DEFAULT_TIMEOUT).unwrap();
        assert_eq!(share(&host, 0, || Ok(made)).unwrap(), made);
        assert_eq!(rank1.join().unwrap(), made);
        assert_eq!(decode(&encode(&[0; 128])).unwrap(), [0; 128]);
        assert_eq!(decode(&encode(&[0xff; 128])).unwrap(), [0xff; 128]);
        for bad in ["", "zz", &"0".repeat(255), &"g".repeat(256)] {
            let e = decode(bad).unwrap_err().to_string();
            assert!(e.contains("nccl-unique-id"), "{e}");
        }
    }
}
