//! Little-endian field access by offset, refusing (never panicking) on short buffers.

use crate::error::IoctlError;

/// Reads fields of an input buffer whose length was already checked; a short read still yields
/// an error (`on_short`) rather than a panic.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    on_short: IoctlError,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], on_short: IoctlError) -> Self {
        Reader { bytes, on_short }
    }

    pub(crate) fn array<const N: usize>(&self, offset: usize) -> Result<[u8; N], IoctlError> {
        self.bytes.get(offset..).and_then(|b| b.get(..N)).and_then(|b| b.try_into().ok()).ok_or(self.on_short)
    }

    pub(crate) fn u8(&self, offset: usize) -> Result<u8, IoctlError> {
        Ok(self.array::<1>(offset)?[0])
    }

    pub(crate) fn u16(&self, offset: usize) -> Result<u16, IoctlError> {
        Ok(u16::from_le_bytes(self.array(offset)?))
    }

    pub(crate) fn u32(&self, offset: usize) -> Result<u32, IoctlError> {
        Ok(u32::from_le_bytes(self.array(offset)?))
    }

    pub(crate) fn u64(&self, offset: usize) -> Result<u64, IoctlError> {
        Ok(u64::from_le_bytes(self.array(offset)?))
    }

    pub(crate) fn slice(&self, offset: usize, len: usize) -> Result<&'a [u8], IoctlError> {
        self.bytes.get(offset..).and_then(|b| b.get(..len)).ok_or(self.on_short)
    }
}

/// Writes fields into an output buffer whose size was already checked.
pub(crate) struct Writer<'a> {
    bytes: &'a mut [u8],
}

impl<'a> Writer<'a> {
    pub(crate) fn new(bytes: &'a mut [u8]) -> Self {
        Writer { bytes }
    }

    pub(crate) fn put(&mut self, offset: usize, value: &[u8]) -> Result<(), IoctlError> {
        let needed = offset + value.len();
        self.bytes
            .get_mut(offset..needed)
            .ok_or(IoctlError::BufferTooSmall { needed })?
            .copy_from_slice(value);
        Ok(())
    }

    pub(crate) fn u8(&mut self, offset: usize, value: u8) -> Result<(), IoctlError> {
        self.put(offset, &[value])
    }

    pub(crate) fn u16(&mut self, offset: usize, value: u16) -> Result<(), IoctlError> {
        self.put(offset, &value.to_le_bytes())
    }

    pub(crate) fn u32(&mut self, offset: usize, value: u32) -> Result<(), IoctlError> {
        self.put(offset, &value.to_le_bytes())
    }

    pub(crate) fn u64(&mut self, offset: usize, value: u64) -> Result<(), IoctlError> {
        self.put(offset, &value.to_le_bytes())
    }
}
