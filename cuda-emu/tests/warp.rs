//! Warp shuffles (full and partial masks), votes, `__syncwarp`, `__syncthreads_count`.

mod common;

const WARP: &str = r#"
extern "C" __global__ void warp(const int* in, int* out) {
  int t = threadIdx.x, lane = t & 31;
  int v = in[t];
  int o = t * 8;
  out[o + 0] = __shfl_down_sync(0xffffffff, v, 3);
  out[o + 1] = __shfl_up_sync(0xffffffff, v, 5, 16);
  out[o + 2] = __shfl_xor_sync(0xffffffff, v, 6);
  out[o + 3] = __shfl_sync(0xffffffff, v, (lane * 7) & 31);
  unsigned ballot = __ballot_sync(0xffffffff, v & 1);
  out[o + 4] = ballot;
  out[o + 5] = __all_sync(0xffffffff, v > -1000) + 2 * __any_sync(0xffffffff, v == 5) + 4 * __uni_sync(0xffffffff, v & 0);
  if (lane < 16) {
    // Only the low half-warp takes part: a partial mask.
    int s = v;
    for (int k = 8; k > 0; k >>= 1) s += __shfl_xor_sync(0x0000ffff, s, k);
    out[o + 6] = s;
  } else {
    __syncwarp(0xffff0000);
    out[o + 6] = __shfl_sync(0xffff0000, v, 16 + (lane & 3));
  }
  out[o + 7] = __syncthreads_count(v > 0);
}
"#;

fn reference(input: &[i32]) -> Vec<i32> {
    let n = input.len();
    let count = input.iter().filter(|v| **v > 0).count() as i32;
    let mut out = vec![0; n * 8];
    for t in 0..n {
        let (w, lane) = (t / 32 * 32, t % 32);
        let at = |l: usize| input[w + l];
        let o = t * 8;
        out[o] = if lane + 3 < 32 {
            at(lane + 3)
        } else {
            at(lane)
        };
        let seg = lane / 16 * 16;
        out[o + 1] = if lane >= seg + 5 {
            at(lane - 5)
        } else {
            at(lane)
        };
        out[o + 2] = at(lane ^ 6);
        out[o + 3] = at((lane * 7) & 31);
        out[o + 4] = (0..32)
            .filter(|l| at(*l) & 1 != 0)
            .fold(0u32, |b, l| b | 1 << l) as i32;
        let any5 = (0..32).any(|l| at(l) == 5);
        out[o + 5] = 1 + 2 * i32::from(any5) + 4;
        out[o + 6] = if lane < 16 {
            (0..16).map(at).sum()
        } else {
            at(16 + (lane & 3))
        };
        out[o + 7] = count;
    }
    out
}

#[test]
fn shuffles_votes_and_partial_masks() {
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(WARP, "warp");
    let n = 96usize;
    let input: Vec<i32> = (0..n as i32).map(|i| (i * 131) % 97 - 40).collect();
    // SAFETY: `warp` takes (const int*, int*) and writes 8 values a thread.
    let out: Vec<i32> = unsafe { common::block_in_out(&gpu, &f, &input, n as u32, n * 8) };
    let want = reference(&input);
    for t in 0..n {
        assert_eq!(
            &out[t * 8..t * 8 + 8],
            &want[t * 8..t * 8 + 8],
            "thread {t}"
        );
    }
}

const REDUX: &str = r#"
extern "C" __global__ void redux(const unsigned* in, unsigned* out) {
  int t = threadIdx.x;
  unsigned v = in[t];
  out[t * 4 + 0] = __reduce_add_sync(0xffffffff, v);
  out[t * 4 + 1] = __reduce_max_sync(0xffffffff, v);
  out[t * 4 + 2] = __match_any_sync(0xffffffff, v % 3);
  int pred;
  out[t * 4 + 3] = __match_all_sync(0xffffffff, v / 1000, &pred) + pred;
}
"#;

#[test]
fn warp_reductions_and_matches() {
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(REDUX, "redux");
    let input: Vec<u32> = (0..64u32).map(|i| (i * 37) % 101).collect();
    // SAFETY: `redux` takes (const unsigned*, unsigned*) and writes 4 values a thread.
    let out: Vec<u32> = unsafe { common::block_in_out(&gpu, &f, &input, 64, 64 * 4) };
    for t in 0..64 {
        let warp = &input[t / 32 * 32..t / 32 * 32 + 32];
        assert_eq!(out[t * 4], warp.iter().sum::<u32>(), "reduce_add at {t}");
        assert_eq!(
            out[t * 4 + 1],
            *warp.iter().max().unwrap(),
            "reduce_max at {t}"
        );
        let same = (0..32)
            .filter(|l| warp[*l] % 3 == input[t] % 3)
            .fold(0u32, |m, l| m | 1 << l);
        assert_eq!(out[t * 4 + 2], same, "match_any at {t}");
        assert_eq!(
            out[t * 4 + 3],
            0xffff_ffffu32.wrapping_add(1),
            "match_all (all values < 1000) at {t}"
        );
    }
}

const ACTIVE: &str = r#"
extern "C" __global__ void active(int* out) {
  int t = threadIdx.x;
  if (t % 3 == 0) {
    unsigned m = __activemask();
    out[t] = __shfl_sync(m, t * 10, __ffs(m) - 1) + __popc(m) * 1000;
  } else {
    out[t] = (int)__activemask();
  }
}
"#;

#[test]
fn activemask_reports_the_lanes_of_the_branch() {
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(ACTIVE, "active");
    // SAFETY: `active` takes (int*) and writes a value a thread.
    let out: Vec<i32> = unsafe { common::block_out(&gpu, &f, 64, 64) }.unwrap();
    for w in 0..2 {
        let lanes = |taken: bool| {
            (0..32)
                .filter(|l| ((w * 32 + l) % 3 == 0) == taken)
                .fold(0u32, |m, l| m | 1 << l)
        };
        let (yes, no) = (lanes(true), lanes(false));
        let first = w * 32 + yes.trailing_zeros() as usize;
        for lane in 0..32 {
            let t = w * 32 + lane;
            let want = if t % 3 == 0 {
                first as i32 * 10 + yes.count_ones() as i32 * 1000
            } else {
                no as i32
            };
            assert_eq!(out[t], want, "thread {t}");
        }
    }
}
