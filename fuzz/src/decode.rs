//! JPEG and PNG bytes through kiln's decode path, to gray and to RGB.
use kiln_train::data::decode;

/// Decodes `data` to 1 and to 3 channels.
pub fn run(data: &[u8]) {
    crate::tolerate_decoder_panics();
    for chans in [1, 3] {
        if let Ok(im) = decode(data, chans, "fuzz") {
            assert_eq!((im.c, im.data.len()), (chans, im.w * im.h * chans));
        }
    }
}
