//! The cost service's domain: meters, money in whole cents, the price book and its history,
//! and the arithmetic of cost reports. Pure functions of their inputs, tested here.

pub mod budget;
pub mod daily;
pub mod forecast;
pub mod meter;
pub mod money;
pub mod price_book;
pub mod recommend;
pub mod report;
