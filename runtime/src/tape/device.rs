//! What the Tape needs from a program, so one Tape serves CPU programs
//! ([`Program`]) and GPU programs ([`CudaProgram`]).

use crate::compile::KernelInfo;
use crate::cuda::CudaProgram;
use crate::error::Error;
use crate::field::{FieldInfo, Snapshot};
use crate::program::{Arg, Program};

pub trait Device {
    /// A saved copy of one field.
    type Snapshot;
    fn kernel_info(&self, name: &str) -> Result<&KernelInfo, Error>;
    /// The program's fields, by index.
    fn field_infos(&self) -> &[FieldInfo];
    fn launch(&mut self, kernel: &str, args: &[Arg]) -> Result<(), Error>;
    fn snapshot(&self, field: usize) -> Result<Self::Snapshot, Error>;
    fn restore(&mut self, field: usize, saved: &Self::Snapshot) -> Result<(), Error>;
    /// The bytes one snapshot of `field` holds (for memory plans).
    fn snapshot_bytes(&self, field: usize) -> usize {
        self.field_infos()[field].bytes()
    }
    /// Sets every element of a field to `value`.
    fn fill(&mut self, field: usize, value: f64) -> Result<(), Error>;

    fn field_index(&self, name: &str) -> Result<usize, Error> {
        self.field_infos()
            .iter()
            .position(|f| f.name == name)
            .ok_or_else(|| Error::Field(format!("no field @{name} in this program")))
    }
}

impl Device for Program {
    type Snapshot = Snapshot;
    fn kernel_info(&self, name: &str) -> Result<&KernelInfo, Error> {
        self.kernel(name)
    }
    fn field_infos(&self) -> &[FieldInfo] {
        self.field_infos()
    }
    fn launch(&mut self, kernel: &str, args: &[Arg]) -> Result<(), Error> {
        Program::launch(self, kernel, args)
    }
    fn snapshot(&self, field: usize) -> Result<Snapshot, Error> {
        Ok(self.fields()[field].snapshot())
    }
    fn restore(&mut self, field: usize, saved: &Snapshot) -> Result<(), Error> {
        self.fields_mut()[field].restore(saved)
    }
    /// As counted by [`crate::memory`]: allocations are at least one alignment unit.
    fn snapshot_bytes(&self, field: usize) -> usize {
        self.field_infos()[field].bytes().max(crate::native::FIELD_ALIGN)
    }
    fn fill(&mut self, field: usize, value: f64) -> Result<(), Error> {
        self.fields_mut()[field].fill_f64(value)
    }
}

impl Device for CudaProgram {
    type Snapshot = cudarc::driver::CudaSlice<u8>;
    fn kernel_info(&self, name: &str) -> Result<&KernelInfo, Error> {
        self.kernel(name)
    }
    fn field_infos(&self) -> &[FieldInfo] {
        self.field_infos()
    }
    fn launch(&mut self, kernel: &str, args: &[Arg]) -> Result<(), Error> {
        CudaProgram::launch(self, kernel, args)
    }
    fn snapshot(&self, field: usize) -> Result<Self::Snapshot, Error> {
        self.snapshot_field(field)
    }
    fn restore(&mut self, field: usize, saved: &Self::Snapshot) -> Result<(), Error> {
        self.restore_field(field, saved)
    }
    fn fill(&mut self, field: usize, value: f64) -> Result<(), Error> {
        self.fill_f64(field, value)
    }
}
