//! ATM UNI 3.1 call parameters (atm.h): addresses, Q.2931 information elements, media parameters.
pub const CALLMGR_SPECIFIC_Q2931: u32 = 1;
