//! timm's `DlaTree`: a recursive aggregation of residual blocks whose outputs (and, at a level
//! root, the downsampled input) a `DlaRoot` fuses.

use super::block::{conv, DlaBlock, DlaRoot};
use super::config::BlockKind;
use crate::layers::{BatchNorm2d, Conv2d};
use crate::{Children, Module, Result};
use kiln_engine::{Pool2d, Tensor};

/// `project`: a 1×1 conv (`0`) and BN (`1`) where a tree changes the width.
#[derive(Children)]
pub struct Project {
    #[child(name = "0")]
    conv: Conv2d,
    #[child(name = "1")]
    bn: BatchNorm2d,
}

impl Module for Project {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.bn.forward(&self.conv.forward(x)?)
    }
}

/// A tree's child: a block (depth 1) or a subtree.
#[derive(Children)]
pub enum Node {
    /// A residual block.
    Block(Box<DlaBlock>),
    /// A tree one level shallower.
    Tree(Box<DlaTree>),
}

impl Node {
    fn forward_with(
        &self,
        x: &Tensor,
        shortcut: Option<&Tensor>,
        children: Vec<Tensor>,
    ) -> Result<Tensor> {
        match self {
            Node::Block(b) => b.forward_with(x, shortcut),
            Node::Tree(t) => t.forward_with(x, children),
        }
    }
}

impl Module for Node {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, None, Vec::new())
    }
}

/// What a tree is built from besides its widths.
#[derive(Clone, Copy)]
pub(super) struct TreeArgs {
    pub(super) block: BlockKind,
    pub(super) cardinality: usize,
    pub(super) base_width: usize,
    pub(super) root_shortcut: bool,
}

/// timm's `DlaTree` (`project`, `tree1`, `tree2`, `root`).
#[derive(Children)]
pub struct DlaTree {
    #[child]
    project: Option<Project>,
    #[child]
    tree1: Node,
    #[child]
    tree2: Node,
    #[child]
    root: Option<DlaRoot>,
    stride: usize,
    level_root: bool,
}

impl DlaTree {
    /// A tree of `levels` `in_c` → `out_c` at `stride`; `root_dim` 0 means twice `out_c`.
    pub(super) fn new(
        levels: usize,
        a: TreeArgs,
        (in_c, out_c, stride): (usize, usize, usize),
        level_root: bool,
        root_dim: usize,
    ) -> Result<DlaTree> {
        let mut root_dim = if root_dim == 0 { 2 * out_c } else { root_dim };
        if level_root {
            root_dim += in_c;
        }
        let block = |i, o, s| -> Result<Node> {
            let b = DlaBlock::new(a.block, (i, o, s), a.cardinality, a.base_width)?;
            Ok(Node::Block(Box::new(b)))
        };
        let (project, tree1, tree2, root) = if levels == 1 {
            let project = (in_c != out_c)
                .then(|| -> Result<Project> {
                    Ok(Project {
                        conv: conv(in_c, out_c, 1, 1, 1)?,
                        bn: BatchNorm2d::new(out_c)?,
                    })
                })
                .transpose()?;
            let root = DlaRoot::new(root_dim, out_c, a.root_shortcut)?;
            (
                project,
                block(in_c, out_c, stride)?,
                block(out_c, out_c, 1)?,
                Some(root),
            )
        } else {
            let t1 = DlaTree::new(levels - 1, a, (in_c, out_c, stride), false, 0)?;
            let t2 = DlaTree::new(levels - 1, a, (out_c, out_c, 1), false, root_dim + out_c)?;
            (
                None,
                Node::Tree(Box::new(t1)),
                Node::Tree(Box::new(t2)),
                None,
            )
        };
        Ok(DlaTree {
            project,
            tree1,
            tree2,
            root,
            stride,
            level_root,
        })
    }

    /// timm's `DlaTree.forward(x, children=children)`: `children` collects the outputs the
    /// deepest root fuses.
    fn forward_with(&self, x: &Tensor, mut children: Vec<Tensor>) -> Result<Tensor> {
        let bottom = match self.stride > 1 {
            true => x.max_pool2d(Pool2d::new(self.stride, self.stride, 0))?,
            false => x.clone(),
        };
        let shortcut = match &self.project {
            Some(p) => p.forward(&bottom)?,
            None => bottom.clone(),
        };
        if self.level_root {
            children.push(bottom);
        }
        let x1 = self.tree1.forward_with(x, Some(&shortcut), Vec::new())?;
        match &self.root {
            Some(root) => {
                let x2 = self.tree2.forward(&x1)?;
                let mut all = vec![x2, x1];
                all.extend(children);
                root.fuse(&all)
            }
            None => {
                children.push(x1.clone());
                self.tree2.forward_with(&x1, None, children)
            }
        }
    }
}

impl Module for DlaTree {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, Vec::new())
    }
}
