//! Strongly connected components of a directed graph (Tarjan's algorithm): the import circles
//! of a module graph are its components of more than one node.

/// Tarjan's per-node state.
struct Tarjan<'a> {
    succ: &'a [Vec<usize>],
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    next: usize,
    out: Vec<Vec<usize>>,
}

impl Tarjan<'_> {
    fn visit(&mut self, v: usize) {
        self.index[v] = Some(self.next);
        self.low[v] = self.next;
        self.next += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
        for &w in &self.succ[v] {
            match self.index[w] {
                None => {
                    self.visit(w);
                    self.low[v] = self.low[v].min(self.low[w]);
                }
                Some(i) if self.on_stack[w] => self.low[v] = self.low[v].min(i),
                Some(_) => {}
            }
        }
        if Some(self.low[v]) == self.index[v] {
            let mut component = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            component.sort_unstable();
            self.out.push(component);
        }
    }
}

/// The strongly connected components of the graph on nodes `0..n` with edges `edges`, each
/// sorted, ordered by their smallest node.
pub fn components(n: usize, edges: impl IntoIterator<Item = (usize, usize)>) -> Vec<Vec<usize>> {
    let mut succ = vec![Vec::new(); n];
    for (a, b) in edges {
        succ[a].push(b);
    }
    let mut t = Tarjan {
        succ: &succ,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            t.visit(v);
        }
    }
    let mut out = t.out;
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::components;

    /// Two circles (one through three nodes) and a node on no circle.
    #[test]
    fn finds_circles() {
        let edges = [(0, 1), (1, 2), (2, 0), (2, 3), (4, 5), (5, 4)];
        assert_eq!(components(6, edges), [vec![0, 1, 2], vec![3], vec![4, 5]]);
    }
}
