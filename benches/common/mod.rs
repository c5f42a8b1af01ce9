//! What the data benches share: the training pipeline they time.
use kiln::train::augment::{
    aa_transform, AugHparams, HFlip, Interpolation, Pipeline, RandomResizedCrop, Transform,
};
use kiln::train::loader::IMAGENET_DEFAULT_MEAN;

/// torchvision's `RandomResizedCrop(224)` (bilinear) + `RandomHorizontalFlip()`, plus `aa` if given.
pub fn rrc224_flip(aa: Option<&str>) -> Pipeline {
    let rrc = RandomResizedCrop {
        size: (224, 224),
        scale: (0.08, 1.0),
        ratio: (0.75, 4.0 / 3.0),
        interp: Interpolation::Bilinear,
    };
    let primary: Vec<Box<dyn Transform>> = vec![Box::new(rrc), Box::new(HFlip(0.5))];
    let secondary = aa.map(|a| {
        let hp = AugHparams::for_image(224, &IMAGENET_DEFAULT_MEAN, Interpolation::Random);
        aa_transform(a, hp).expect("valid aa string")
    });
    Pipeline::new(primary, secondary.into_iter().collect())
}
