//! Fuzzes the responders with arbitrary host bytes, samples and time steps.
#![no_main]

use std::convert::Infallible;

use firmware_shim::responder::{DeviceInfo, SicsConfig, SicsResponder, Toledo8217Responder};
use firmware_shim::scale::{Calibration, Scale, ScaleConfig};
use libfuzzer_sys::fuzz_target;

struct Sink(usize);

impl embedded_io::ErrorType for Sink {
    type Error = Infallible;
}

impl embedded_io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let cfg = ScaleConfig::platform_30kg(Calibration {
        counts: 100,
        weight: 1,
    });
    let mut sics = SicsResponder::new(
        Scale::<4>::new(cfg, 0).unwrap(),
        SicsConfig::default(),
        DeviceInfo::default(),
    );
    let mut toledo = Toledo8217Responder::new(Scale::<4>::new(cfg, 0).unwrap());
    let mut out = Sink(0);
    let mut now = 0u64;
    for chunk in data.chunks(5) {
        match chunk[0] % 4 {
            0 if chunk.len() == 5 => {
                let raw = i32::from_le_bytes([chunk[1], chunk[2], chunk[3], chunk[4]]) >> 6;
                sics.scale_mut().feed(raw, now);
                toledo.scale_mut().feed(raw, now);
            }
            1 => {
                now += u64::from(chunk.get(1).copied().unwrap_or(0)) * 20;
                sics.tick(now, &mut out).unwrap();
                toledo.tick(now, &mut out).unwrap();
            }
            _ => {
                sics.on_bytes(&chunk[1..], now, &mut out).unwrap();
                toledo.on_bytes(&chunk[1..], now, &mut out).unwrap();
            }
        }
    }
});
