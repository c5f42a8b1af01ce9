//! The few protocol-buffer messages an event file needs (tensorflow/core/util/event.proto and
//! summary.proto), encoded by hand: Event { wall_time = 1, step = 2, file_version = 3,
//! summary = 5 }, Summary { value = 1 }, Value { tag = 1, simple_value = 2, image = 4 },
//! Image { height = 1, width = 2, colorspace = 3, encoded_image_string = 4 }.

use crate::loader::Png;

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const BYTES: u32 = 2;
const FIXED32: u32 = 5;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire: u32) {
    varint(out, u64::from(field << 3 | wire));
}

fn bytes_field(out: &mut Vec<u8>, field: u32, data: &[u8]) {
    key(out, field, BYTES);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

fn varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    key(out, field, VARINT);
    varint(out, v);
}

/// An Event with its wall time and step around `body` (its remaining fields).
fn event(wall_time: f64, step: u64, body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    key(&mut out, 1, FIXED64);
    out.extend_from_slice(&wall_time.to_le_bytes());
    if step > 0 {
        varint_field(&mut out, 2, step);
    }
    body(&mut out);
    out
}

/// The first event of a file: `file_version: "brain.Event:2"`.
pub fn file_version_event(wall_time: f64) -> Vec<u8> {
    event(wall_time, 0, |out| bytes_field(out, 3, b"brain.Event:2"))
}

/// A summary event with one value: the tag and `value_body` (the value's other fields).
fn summary_event(wall_time: f64, step: u64, tag: &str, value_body: &[u8]) -> Vec<u8> {
    let mut value = Vec::new();
    bytes_field(&mut value, 1, tag.as_bytes());
    value.extend_from_slice(value_body);
    let mut summary = Vec::new();
    bytes_field(&mut summary, 1, &value);
    event(wall_time, step, |out| bytes_field(out, 5, &summary))
}

/// A scalar summary (`simple_value`).
pub fn scalar_event(wall_time: f64, step: u64, tag: &str, value: f32) -> Vec<u8> {
    let mut body = Vec::new();
    key(&mut body, 2, FIXED32);
    body.extend_from_slice(&value.to_le_bytes());
    summary_event(wall_time, step, tag, &body)
}

/// An image summary holding an encoded PNG.
pub fn image_event(wall_time: f64, step: u64, tag: &str, png: &Png) -> Vec<u8> {
    let mut image = Vec::new();
    varint_field(&mut image, 1, u64::from(png.height));
    varint_field(&mut image, 2, u64::from(png.width));
    varint_field(&mut image, 3, u64::from(png.channels));
    bytes_field(&mut image, 4, &png.bytes);
    let mut body = Vec::new();
    bytes_field(&mut body, 4, &image);
    summary_event(wall_time, step, tag, &body)
}
