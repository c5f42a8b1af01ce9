//! Channel ids: every channel index a traced value carries gets an id; ids that must be removed
//! together (a residual add's branches, a conv's output and its norm) are united. The classes
//! are the removable channels; the sources united with them (the layers that made them) form a
//! group, Torch-Pruning's dependency group.

/// Union-find over channel ids and over the sources that made them.
#[derive(Debug, Default, Clone)]
pub(crate) struct Ids {
    parent: Vec<usize>,
    source: Vec<usize>,
    frozen: Vec<bool>,
    normalized: Vec<bool>,
    source_parent: Vec<usize>,
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

impl Ids {
    /// `n` new ids from one new source (a layer's output channels).
    pub fn fresh(&mut self, n: usize) -> Vec<usize> {
        let src = self.source_parent.len();
        self.source_parent.push(src);
        let first = self.parent.len();
        for i in first..first + n {
            self.parent.push(i);
            self.source.push(src);
            self.frozen.push(false);
            self.normalized.push(false);
        }
        (first..first + n).collect()
    }

    /// `n` new ids that are never removed (the input's channels, ops kiln cannot follow).
    pub fn fresh_frozen(&mut self, n: usize) -> Vec<usize> {
        let ids = self.fresh(n);
        ids.iter().for_each(|&i| self.freeze(i));
        ids
    }

    /// The class (removable channel) `id` belongs to.
    pub fn class(&mut self, id: usize) -> usize {
        find(&mut self.parent, id)
    }

    /// The class of `id`, without compressing paths (for a shared graph).
    pub fn root(&self, mut id: usize) -> usize {
        while self.parent[id] != id {
            id = self.parent[id];
        }
        id
    }

    /// The group (united sources) `id` belongs to.
    pub fn group(&mut self, id: usize) -> usize {
        let root = self.class(id);
        let src = self.source[root];
        find(&mut self.source_parent, src)
    }

    /// Makes `a` and `b` one channel (and their sources one group).
    pub fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.class(a), self.class(b));
        let (sa, sb) = (self.source[ra], self.source[rb]);
        let (ga, gb) = (
            find(&mut self.source_parent, sa),
            find(&mut self.source_parent, sb),
        );
        self.source_parent[gb] = ga;
        if ra != rb {
            self.parent[rb] = ra;
            self.frozen[ra] |= self.frozen[rb];
            self.normalized[ra] |= self.normalized[rb];
        }
    }

    /// Unites two id lists index by index.
    pub fn union_all(&mut self, a: &[usize], b: &[usize]) {
        a.iter().zip(b).for_each(|(&x, &y)| self.union(x, y));
    }

    /// Marks `id`'s channel as never removed.
    pub fn freeze(&mut self, id: usize) {
        let r = self.class(id);
        self.frozen[r] = true;
    }

    /// Marks `id`'s channel as normalized over (a LayerNorm's statistics read it).
    pub fn normalize(&mut self, id: usize) {
        let r = self.class(id);
        self.normalized[r] = true;
    }

    /// Whether `id`'s channel is never removed.
    pub fn is_frozen(&mut self, id: usize) -> bool {
        let r = self.class(id);
        self.frozen[r]
    }

    /// Whether a LayerNorm normalizes over `id`'s channel.
    pub fn is_normalized(&mut self, id: usize) -> bool {
        let r = self.class(id);
        self.normalized[r]
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.parent.len()
    }
}
