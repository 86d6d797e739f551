//! The stages, side by side: read → invite → join → power level → history check, each on
//! its own thread and client. Reading is not rate-limited and each later stage is limited
//! by its own bucket, so the first invite goes out as soon as the first room is read, and
//! every stage keeps working while another waits out a 429.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};

use online::Client;

use super::ctx::Ctx;
use super::outcome::RoomSlot;
use super::steps::{self, Next};
use crate::events::{Event, Stage};
use crate::journal::JournalError;
use crate::rooms::plan::Planner;

/// Each stage's own clients (each with its own waits), moved into its thread.
pub(crate) struct Clients {
    pub(crate) inviter: Client,
    pub(crate) joiner: Client,
    pub(crate) joiner_old: Client,
    pub(crate) empowerer: Client,
    pub(crate) checker_old: Client,
    pub(crate) checker_new: Client,
}

/// How far the reading has got: the other stages' totals are known only once every room
/// is read, so until then each shows an upper bound (what it has, plus every room unread).
#[derive(Default)]
struct Counts {
    unread: AtomicU64,
    invites: AtomicU64,
    moving: AtomicU64,
}

impl Counts {
    fn invites(&self) -> u64 {
        self.invites.load(Ordering::Relaxed) + self.unread.load(Ordering::Relaxed)
    }
    fn moving(&self) -> u64 {
        self.moving.load(Ordering::Relaxed) + self.unread.load(Ordering::Relaxed)
    }

    /// Sends room `i` on to the stage `next` names, counted.
    fn send_on(
        &self,
        i: usize,
        next: Option<Next>,
        invites: &mpsc::Sender<usize>,
        joins: &mpsc::Sender<usize>,
    ) {
        let to = match next {
            Some(Next::Invite) => {
                self.invites.fetch_add(1, Ordering::Relaxed);
                invites
            }
            Some(Next::Join) => joins,
            None => return,
        };
        self.moving.fetch_add(1, Ordering::Relaxed);
        let _ = to.send(i);
    }
}

/// One stage's loop: takes rooms from `rx` until it closes (or the run stops), does `step`
/// on each, passes on those that go on, and tells its progress against `total()`.
fn stage_worker(
    ctx: &Ctx<'_>,
    stage: Stage,
    rx: mpsc::Receiver<usize>,
    next: Option<mpsc::Sender<usize>>,
    total: &dyn Fn() -> u64,
    step: &dyn Fn(usize) -> Result<bool, JournalError>,
) -> Result<(), JournalError> {
    for (done, i) in (1..).zip(rx) {
        if ctx.stopped() {
            break;
        }
        if step(i)? {
            if let Some(next) = &next {
                let _ = next.send(i);
            }
        }
        ctx.events.emit(Event::Progress {
            stage,
            done,
            total: total(),
        });
    }
    ctx.events.emit(Event::Finished { stage });
    Ok(())
}

/// Runs every stage over `slots` (the rooms not left earlier).
pub(crate) fn pipeline(
    ctx: &Ctx<'_>,
    planner: &Planner<'_>,
    slots: &[RoomSlot],
    clients: Clients,
) -> Result<(), crate::Error> {
    let to_read: Vec<usize> = (0..slots.len())
        .filter(|&i| !slots[i].with(|o| o.left))
        .collect();
    let counts = &Counts::default();
    counts.unread.store(to_read.len() as u64, Ordering::Relaxed);
    announce(ctx, to_read.len() as u64, counts.moving());
    let (invite_tx, invite_rx) = mpsc::channel::<usize>();
    let (join_tx, join_rx) = mpsc::channel::<usize>();
    let (power_tx, power_rx) = mpsc::channel::<usize>();
    let (check_tx, check_rx) = mpsc::channel::<usize>();
    let invited_tx = join_tx.clone();
    let w = &Steps {
        ctx,
        slots,
        c: clients,
    };
    let (invites, moving) = (&|| counts.invites(), &|| counts.moving());
    std::thread::scope(|scope| -> Result<(), crate::Error> {
        let handles = [
            scope.spawn(move || {
                read_stage(ctx, planner, slots, &to_read, counts, invite_tx, join_tx)
            }),
            scope.spawn(move || {
                stage_worker(
                    ctx,
                    Stage::Invite,
                    invite_rx,
                    Some(invited_tx),
                    invites,
                    &|i| w.invite(i),
                )
            }),
            scope.spawn(move || {
                stage_worker(ctx, Stage::Join, join_rx, Some(power_tx), moving, &|i| {
                    w.join(i)
                })
            }),
            scope.spawn(move || {
                stage_worker(ctx, Stage::Power, power_rx, Some(check_tx), moving, &|i| {
                    w.power(i)
                })
            }),
            scope.spawn(move || {
                stage_worker(ctx, Stage::History, check_rx, None, moving, &|i| w.check(i))
            }),
        ];
        for handle in handles {
            handle.join().expect("a stage panicked")?;
        }
        Ok(())
    })
}

/// The steps of the stages after the read, each with its own clients; each says whether
/// the room goes on to the next stage.
struct Steps<'c, 's> {
    ctx: &'c Ctx<'c>,
    slots: &'s [RoomSlot],
    c: Clients,
}

impl Steps<'_, '_> {
    fn invite(&self, i: usize) -> Result<bool, JournalError> {
        steps::invite(self.ctx, &self.c.inviter, &self.slots[i])
    }

    fn join(&self, i: usize) -> Result<bool, JournalError> {
        steps::join(self.ctx, &self.c.joiner, &self.c.joiner_old, &self.slots[i])
    }

    fn power(&self, i: usize) -> Result<bool, JournalError> {
        steps::give_power(self.ctx, &self.c.empowerer, &self.slots[i])?;
        Ok(self.slots[i].with(|o| o.in_new_account()))
    }

    fn check(&self, i: usize) -> Result<bool, JournalError> {
        let c = &self.c;
        steps::check_history(self.ctx, &c.checker_old, &c.checker_new, &self.slots[i]);
        Ok(true)
    }
}

fn announce(ctx: &Ctx<'_>, to_read: u64, moving: u64) {
    ctx.events.emit(Event::Started {
        stage: Stage::ReadRooms,
        total: Some(to_read),
    });
    for stage in [Stage::Invite, Stage::Join, Stage::Power, Stage::History] {
        ctx.events.emit(Event::Started {
            stage,
            total: Some(moving),
        });
    }
}

/// The read stage: the planner's readers side by side, each room sent on to the invites
/// or the joins as soon as it is read.
fn read_stage(
    ctx: &Ctx<'_>,
    planner: &Planner<'_>,
    slots: &[RoomSlot],
    to_read: &[usize],
    counts: &Counts,
    invite_tx: mpsc::Sender<usize>,
    join_tx: mpsc::Sender<usize>,
) -> Result<(), JournalError> {
    let names: Vec<String> = to_read.iter().map(|&i| slots[i].room_id()).collect();
    let failed: Mutex<Option<JournalError>> = Mutex::new(None);
    let read = AtomicU64::new(0);
    let stop = || ctx.stopped() || failed.lock().expect("error lock").is_some();
    let total = to_read.len() as u64;
    planner.plan_all(&names, &stop, &|n, plan| {
        let i = to_read[n];
        match steps::take_plan(ctx, &slots[i], plan) {
            Ok(next) => counts.send_on(i, next, &invite_tx, &join_tx),
            Err(e) => {
                failed.lock().expect("error lock").get_or_insert(e);
            }
        }
        counts.unread.fetch_sub(1, Ordering::Relaxed);
        ctx.events.emit(Event::Progress {
            stage: Stage::ReadRooms,
            done: read.fetch_add(1, Ordering::Relaxed) + 1,
            total,
        });
    });
    // Rooms never read (stopped) leave the upper bounds.
    counts.unread.store(0, Ordering::Relaxed);
    ctx.events.emit(Event::Finished {
        stage: Stage::ReadRooms,
    });
    failed.into_inner().expect("error lock").map_or(Ok(()), Err)
}
