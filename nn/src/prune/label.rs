//! A [`Label`]: the channel ids a traced value carries along some of its axes, and how views
//! (reshape, permute, narrow, broadcast) carry them to their outputs.

/// Channel ids over `axes` of a value, row-major in the order `axes` lists them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Label {
    /// The labeled axes.
    pub axes: Vec<usize>,
    /// Their sizes.
    pub dims: Vec<usize>,
    /// One id per index of the labeled axes, row-major.
    pub ids: Vec<usize>,
}

impl Label {
    /// Channel ids along one axis.
    pub fn along(axis: usize, ids: Vec<usize>) -> Label {
        Label {
            axes: vec![axis],
            dims: vec![ids.len()],
            ids,
        }
    }

    /// The same ids with the axes in increasing order.
    pub fn canonical(&self) -> Label {
        let mut order: Vec<usize> = (0..self.axes.len()).collect();
        order.sort_by_key(|&i| self.axes[i]);
        self.transposed(&order)
    }

    /// The label with its axes listed in `order` (positions into `self.axes`).
    fn transposed(&self, order: &[usize]) -> Label {
        let dims: Vec<usize> = order.iter().map(|&i| self.dims[i]).collect();
        let strides = row_major_strides(&self.dims);
        let mut ids = Vec::with_capacity(self.ids.len());
        for flat in 0..self.ids.len() {
            let mut rem = flat;
            let mut src = 0;
            for (k, &i) in order.iter().enumerate().rev() {
                src += (rem % dims[k]) * strides[i];
                rem /= dims[k];
            }
            ids.push(self.ids[src]);
        }
        Label {
            axes: order.iter().map(|&i| self.axes[i]).collect(),
            dims,
            ids,
        }
    }

    /// The label of a permuted value: output axis j is input axis `perm[j]`.
    pub fn permuted(&self, perm: &[usize]) -> Label {
        let axes = self
            .axes
            .iter()
            .map(|a| perm.iter().position(|p| p == a).unwrap_or(*a))
            .collect();
        Label {
            axes,
            ..self.clone()
        }
    }

    /// The label after `start..start + len` of `dim` is kept (None when nothing labeled is left).
    pub fn narrowed(&self, dim: usize, start: usize, len: usize) -> Label {
        let Some(k) = self.axes.iter().position(|&a| a == dim) else {
            return self.clone();
        };
        let strides = row_major_strides(&self.dims);
        let mut dims = self.dims.clone();
        dims[k] = len;
        let ids = (0..self.ids.len())
            .filter(|&flat| (start..start + len).contains(&(flat / strides[k] % self.dims[k])))
            .map(|flat| self.ids[flat])
            .collect();
        Label {
            axes: self.axes.clone(),
            dims,
            ids,
        }
    }

    /// The label moved `by` axes to the right (a broadcast that adds leading dims).
    pub fn shifted(&self, by: usize) -> Label {
        Label {
            axes: self.axes.iter().map(|a| a + by).collect(),
            ..self.clone()
        }
    }

    /// The label of `input` reshaped to `output`, when the labeled axes (widened over following
    /// axes if needed, as a flatten of C×H×W) map onto a run of output axes; else None.
    pub fn reshaped(&self, input: &[usize], output: &[usize]) -> Option<Label> {
        let mut l = self.canonical();
        let first = l.axes[0];
        if l.axes.iter().enumerate().any(|(k, &a)| a != first + k) {
            return None;
        }
        loop {
            let last = first + l.axes.len() - 1;
            let outer: usize = input[..first].iter().product();
            let run: usize = input[first..=last].iter().product();
            if let Some((b0, b1)) = output_run(output, outer, run) {
                return Some(Label {
                    axes: (b0..=b1).collect(),
                    dims: output[b0..=b1].to_vec(),
                    ids: l.ids,
                });
            }
            if last + 1 >= input.len() {
                return None;
            }
            l = l.widened(input[last + 1]);
        }
    }

    /// The label extended over one more trailing axis of size `n`, each id repeated `n` times.
    fn widened(&self, n: usize) -> Label {
        let mut axes = self.axes.clone();
        axes.push(axes[axes.len() - 1] + 1);
        let mut dims = self.dims.clone();
        dims.push(n);
        let ids = self
            .ids
            .iter()
            .flat_map(|&id| std::iter::repeat_n(id, n))
            .collect();
        Label { axes, dims, ids }
    }

    /// The ids along labeled axis `axis` at index 0 of every other labeled axis, if the label is
    /// that axis alone.
    pub fn only(&self, axis: usize) -> Option<&[usize]> {
        (self.axes == [axis]).then_some(&self.ids[..])
    }
}

/// Output axes `b0..=b1` whose elements before hold `outer` and whose product is `run`.
fn output_run(output: &[usize], outer: usize, run: usize) -> Option<(usize, usize)> {
    let mut before = 1;
    for b0 in 0..output.len() {
        // A size-1 axis at the front of the run (a batch of one) stays outside it.
        let leading_one = output[b0] == 1 && run != 1;
        if before == outer && !leading_one {
            let mut p = 1;
            for (b1, &d) in output.iter().enumerate().skip(b0) {
                p *= d;
                if p == run {
                    return Some((b0, b1));
                }
                if p > run {
                    break;
                }
            }
        }
        before *= output[b0];
        if before > outer {
            break;
        }
    }
    None
}

/// Row-major strides of `dims`.
fn row_major_strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

#[cfg(test)]
mod tests {
    use super::Label;

    #[test]
    fn a_split_channel_dim_keeps_its_ids_in_order() {
        let l = Label::along(2, (0..12).collect());
        let r = l.reshaped(&[1, 5, 12], &[1, 5, 3, 2, 2]).unwrap();
        assert_eq!(r.axes, [2, 3, 4]);
        assert_eq!(r.ids, (0..12).collect::<Vec<_>>());
        // permute [2, 0, 3, 1, 4] then narrow the qkv axis: k is ids 4..8.
        let p = r.permuted(&[2, 0, 3, 1, 4]);
        assert_eq!(p.axes, [0, 2, 4]);
        let k = p.narrowed(0, 1, 1);
        assert_eq!(k.ids, [4, 5, 6, 7]);
    }

    #[test]
    fn a_flatten_repeats_each_channel_over_the_positions() {
        let l = Label::along(1, vec![7, 8]);
        let r = l.reshaped(&[1, 2, 2, 1], &[1, 4]).unwrap();
        assert_eq!((r.axes.clone(), r.ids.clone()), (vec![1], vec![7, 7, 8, 8]));
        let squeezed = l.reshaped(&[1, 2, 1, 1], &[1, 2]).unwrap();
        assert_eq!((squeezed.axes, squeezed.ids), (vec![1], vec![7, 8]));
        let token = Label::along(2, vec![7, 8])
            .reshaped(&[1, 1, 2], &[1, 2])
            .unwrap();
        assert_eq!(token.axes, [1]);
    }

    #[test]
    fn transposing_a_two_axis_label_reorders_its_ids() {
        let l = Label {
            axes: vec![3, 1],
            dims: vec![2, 3],
            ids: (0..6).collect(),
        };
        let c = l.canonical();
        assert_eq!(c.axes, [1, 3]);
        assert_eq!(c.ids, [0, 3, 1, 4, 2, 5]);
    }
}
