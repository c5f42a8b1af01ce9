//! `#[derive(Children)]`: one listing per layer, from which the names, training mode, BatchNorm
//! walk, memory format and tensor maps of every traversal follow.

use kiln_engine::{DType, MemoryFormat, Tensor};
use kiln_nn::layers::{for_each_batch_norm, BatchNorm2d, Conv2d, Linear};
use kiln_nn::{Children, Kind, Module, Result, Visitor, VisitorMut};

/// A group of the parent's, not a module: its entries sit under its field's name.
#[derive(Children)]
#[children(group)]
struct Stem {
    #[child]
    conv: Conv2d,
    #[child(name = "bn")]
    norm: BatchNorm2d,
}

#[derive(Children)]
enum Head {
    Plain(Linear),
    Split {
        #[child(name = "fc_a")]
        a: Linear,
        #[param(name = "scale")]
        s: Tensor,
    },
}

#[derive(Children)]
struct Net {
    #[param]
    token: Tensor,
    #[child(flatten)]
    stem: Stem,
    #[child(each = "layer{}", start = 1)]
    stages: Vec<Vec<Conv2d>>,
    #[child]
    se: Option<Box<dyn Module>>,
    #[buffer]
    table: Option<Tensor>,
    #[child]
    head: Head,
    #[training]
    training: bool,
    other: usize,
}

impl Module for Net {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.clone())
    }
}

impl Module for Head {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.clone())
    }
}

fn conv(c: usize) -> Conv2d {
    Conv2d::new(c, c, 3, 1, 1, false).unwrap()
}

fn net(head: Head) -> Net {
    Net {
        token: Tensor::zeros(&[1, 2], DType::F32).unwrap(),
        stem: Stem {
            conv: conv(2),
            norm: BatchNorm2d::new(2).unwrap(),
        },
        stages: vec![vec![conv(2), conv(2)], vec![conv(2)]],
        se: Some(Box::new(BatchNorm2d::new(2).unwrap())),
        table: None,
        head,
        training: true,
        other: 7,
    }
}

fn names(m: &dyn Module) -> Vec<String> {
    m.named_tensors().into_iter().map(|t| t.name).collect()
}

#[test]
fn the_listing_names_tensors_in_field_order() {
    let head = Head::Split {
        a: Linear::new(2, 3, true).unwrap(),
        s: Tensor::zeros(&[3], DType::F32).unwrap(),
    };
    let bn = [
        "weight",
        "bias",
        "running_mean",
        "running_var",
        "num_batches_tracked",
    ];
    let mut want = vec!["token".to_string(), "conv.weight".into()];
    want.extend(bn.iter().map(|n| format!("bn.{n}")));
    want.extend(["layer1.0.weight", "layer1.1.weight", "layer2.0.weight"].map(String::from));
    want.extend(bn.iter().map(|n| format!("se.{n}")));
    want.extend(["head.fc_a.weight", "head.fc_a.bias", "head.scale"].map(String::from));
    let m = net(head);
    assert_eq!(names(&m), want);
    let kinds: Vec<Kind> = m.named_tensors().iter().map(|t| t.kind).collect();
    assert_eq!(kinds[0], Kind::Parameter);
    assert_eq!(kinds[4], Kind::Buffer, "{}", want[4]);
    assert_eq!(m.other, 7);
}

#[test]
fn a_lone_enum_field_is_flattened() {
    let m = net(Head::Plain(Linear::new(2, 3, false).unwrap()));
    assert_eq!(names(&m).last().unwrap(), "head.weight");
}

#[test]
fn traversals_reach_every_child_through_the_listing() {
    let mut m = net(Head::Plain(Linear::new(2, 3, false).unwrap()));
    m.set_training(false);
    let mut seen = Vec::new();
    for_each_batch_norm(&mut m, &mut |bn| seen.push(bn.training));
    assert_eq!((m.training, seen), (false, vec![false, false]));
    m.set_memory_format(MemoryFormat::ChannelsLast).unwrap();
    assert_eq!(m.weights_memory_format(), MemoryFormat::ChannelsLast);
    m.map_tensors("net", &mut |name, t| match name {
        "net.layer2.0.weight" => Ok(Some(t.narrow(0, 0, 1)?)),
        _ => Ok(None),
    })
    .unwrap();
    assert_eq!(m.stages[1][0].weight.shape(), &[1, 2, 3, 3]);
}

#[test]
fn a_module_that_is_not_resizable_refuses_a_tensor_map() {
    struct Fixed(Linear);
    impl Children for Fixed {
        fn visit(&self, v: &mut dyn Visitor) {
            v.child("fc", &self.0)
        }
        fn visit_mut(&mut self, v: &mut dyn VisitorMut) -> Result<()> {
            v.child("fc", &mut self.0)
        }
    }
    impl Module for Fixed {
        fn forward(&self, x: &Tensor) -> Result<Tensor> {
            Ok(x.clone())
        }
        fn tensors_resizable(&self) -> bool {
            false
        }
    }
    let mut m = Fixed(Linear::new(2, 3, true).unwrap());
    let err = m.map_tensors("x", &mut |_, _| Ok(None)).unwrap_err();
    assert!(err.to_string().contains("x.fc.weight"), "{err}");
}
