//! Who is calling and what they may do: pure logic over plain values, no warp, no SQL.

pub mod password;
