//! Pay-by-plate without the link: a plate and the hour the driver arrived reach their unpaid stay
//! (or, for a car misread at the entry, the near plates of that hour), with wrong tries counted per
//! plate. The rules and why they are these are `valet_garage::pay_by_plate`'s; this looks up,
//! counts and answers.

use valet_billing::{ChargeLog, PaymentGateway};
use valet_garage::{ArrivalHour, ParkingSession, Plate, Reached, TRIES_WINDOW, WRONG_TRIES, reach_unpaid};

use crate::desk::DeskError;
use crate::service::GateService;

/// What a plate and an arrival hour found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoundStays {
    /// The stays of that hour with the plate's matching key: normally one, whose link pays it.
    Same(Vec<ParkingSession>),
    /// No such stay, but stays of that hour whose plates may be this car misread at the entry.
    Near(Vec<ParkingSession>),
    /// Nothing for this plate and hour (whether there is no stay or it began in another hour is
    /// never said); `tries_left` wrong tries remain for this plate.
    Nothing { tries_left: u32 },
    /// This plate had its wrong tries; only the link and the intercom remain, whatever is typed.
    TriesUsedUp,
}

impl<G: PaymentGateway, L: ChargeLog> GateService<G, L> {
    /// The unpaid stays `plate` and `arrival` prove, counting the try against the plate unless it
    /// found something.
    pub async fn find_unpaid_by_plate(&self, plate: &Plate, arrival: ArrivalHour) -> Result<FoundStays, DeskError> {
        let now = self.clock.now();
        let try_id = format!("{:032x}", u128::from_be_bytes(self.ids.fresh()));
        let tries = self.store().record_pay_try(plate, &try_id, now, now - TRIES_WINDOW).await?;
        if tries > WRONG_TRIES {
            // Not a wrong try, only a refused one: the bound lapses a window after the last wrong one.
            self.store().forget_pay_try(&try_id).await?;
            return Ok(FoundStays::TriesUsedUp);
        }
        let (from, to) = arrival.window();
        let records = self.store().unpaid_stays_entered_between(from, to).await?;
        let mut unpaid = Vec::with_capacity(records.len());
        for record in records {
            unpaid.extend(record.to_session()?);
        }
        let found = match reach_unpaid(plate, &arrival, &unpaid) {
            Reached::Same(stays) => FoundStays::Same(stays.into_iter().cloned().collect()),
            Reached::Near(stays) => FoundStays::Near(stays.into_iter().cloned().collect()),
            Reached::Nothing => return Ok(FoundStays::Nothing { tries_left: WRONG_TRIES - tries }),
        };
        self.store().forget_pay_try(&try_id).await?;
        Ok(found)
    }
}
