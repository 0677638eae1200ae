//! Ring hand-over between two threads, the consumer a registered non-EAL
//! thread; single-side handle rules; mbufs left in a dropped ring are freed.

mod common;

use std::time::{Duration, Instant};

use dpdk_bindings::{lcore, Access, Eal, MbufBatch, Mempool, Ring, SOCKET_ANY};

const PACKETS: usize = 1000;

#[test]
fn ring_round_trip_between_threads() {
    let eal = Eal::init(common::eal_args("ring", false, &[])).expect("EAL init");
    let pool = Mempool::new(&eal, "ring_pool", 2047, 32, 2176, SOCKET_ANY).expect("mempool");

    let ring = Ring::new(
        &eal,
        "handover",
        100,
        SOCKET_ANY,
        Access::Single,
        Access::Single,
    )
    .expect("ring");
    assert_eq!(
        ring.capacity(),
        100,
        "RING_F_EXACT_SZ keeps the asked capacity"
    );
    let mut producer = ring.producer().expect("producer");
    assert!(
        ring.producer().is_err(),
        "a single-producer ring has one producer"
    );
    let consumer = ring.consumer().expect("consumer");
    assert!(
        ring.consumer().is_err(),
        "a single-consumer ring has one consumer"
    );

    let worker = std::thread::spawn({
        let eal = eal.clone();
        let mut consumer = consumer;
        move || {
            assert_eq!(lcore::lcore_id(), None, "a plain thread is not an lcore");
            let reg = lcore::thread_register(&eal).expect("thread register");
            assert_eq!(lcore::lcore_id(), Some(reg.lcore_id()));
            let mut seen = Vec::with_capacity(PACKETS);
            let mut batch = MbufBatch::new();
            let deadline = Instant::now() + Duration::from_secs(20);
            while seen.len() < PACKETS && Instant::now() < deadline {
                if consumer.dequeue_burst(&mut batch) == 0 {
                    std::hint::spin_loop();
                    continue;
                }
                for m in batch.drain() {
                    seen.push(u32::from_le_bytes(m.data()[..4].try_into().unwrap()));
                }
            }
            drop(reg);
            assert_eq!(lcore::lcore_id(), None, "unregistered");
            seen
        }
    });

    let mut next = 0u32;
    let mut batch = MbufBatch::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while (next as usize) < PACKETS && Instant::now() < deadline {
        while !batch.is_full() && (next as usize) < PACKETS {
            let mut m = pool.alloc().expect("alloc");
            m.append(64).expect("append").fill(0);
            m.data_mut()[..4].copy_from_slice(&next.to_le_bytes());
            batch.push(m).expect("room");
            next += 1;
        }
        // Whatever does not fit stays in the batch, in order, for the next try.
        producer.enqueue_burst(&mut batch);
    }
    while !batch.is_empty() && Instant::now() < deadline {
        producer.enqueue_burst(&mut batch);
    }
    let seen = worker.join().expect("worker");
    assert_eq!(
        seen,
        (0..PACKETS as u32).collect::<Vec<_>>(),
        "every mbuf arrives once, in order"
    );

    // A dropped ring frees what it still holds.
    drop(producer);
    let mut producer = ring.producer().expect("the producer handle is free again");
    for _ in 0..10 {
        let m = pool.alloc().expect("alloc");
        producer.enqueue(m).expect("ring has room");
    }
    let mut consumer = ring.consumer().expect("consumer free again");
    assert!(consumer.dequeue().is_some());
    assert_eq!(ring.len(), 9);
    let mut two = MbufBatch::new();
    assert_eq!(consumer.dequeue_burst_max(&mut two, 2), 2, "at most max");
    assert_eq!(ring.len(), 7);
    for m in two.drain() {
        producer.enqueue(m).expect("ring has room");
    }
    assert_eq!(ring.len(), 9);
    assert_eq!(pool.in_use(), 9);
    drop((producer, consumer, ring));
    assert_eq!(pool.in_use(), 0, "the ring freed its mbufs on drop");

    // A full ring hands the mbuf back.
    let ring = Ring::new(&eal, "tiny", 1, SOCKET_ANY, Access::Multi, Access::Multi).expect("ring");
    let mut p1 = ring.producer().expect("producer");
    let _p2 = ring.producer().expect("a multi-producer ring has many");
    p1.enqueue(pool.alloc().unwrap()).expect("room for one");
    let back = p1.enqueue(pool.alloc().unwrap()).expect_err("full");
    drop(back);
    drop((p1, _p2, ring));
    assert_eq!(pool.in_use(), 0);

    drop(pool);
    drop(eal);
    common::remove_runtime_dir("ring");
}
