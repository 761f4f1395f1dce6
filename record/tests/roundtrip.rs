use bytes::Bytes;
use tributary_record::*;

fn sample(i: i64) -> Record {
    Record {
        key: if i % 3 == 0 {
            None
        } else {
            Some(Bytes::from(format!("k{i}")))
        },
        value: Some(Bytes::from(vec![i as u8; (i as usize) % 50])),
        timestamp: 1_700_000_000_000 + i * 7 - 20,
        headers: if i % 2 == 0 {
            vec![
                Header {
                    key: "h".into(),
                    value: Some(Bytes::from_static(b"v")),
                },
                Header {
                    key: "n".into(),
                    value: None,
                },
            ]
        } else {
            vec![]
        },
    }
}

#[test]
fn build_then_decode_round_trips() {
    let mut builder = BatchBuilder::new();
    let records: Vec<Record> = (0..20).map(sample).collect();
    for r in &records {
        let predicted = builder.size_with(r);
        builder.push(r);
        assert_eq!(builder.size_in_bytes(), predicted);
    }
    let mut batch = builder.build_vec();
    set_base_offset(&mut batch, 100);
    set_partition_leader_epoch(&mut batch, 7);
    let batch = Bytes::from(batch);
    let header = validate_records(&batch).unwrap();
    assert_eq!(header.base_offset, 100);
    assert_eq!(header.partition_leader_epoch, 7);
    assert_eq!(header.records_count, 20);
    assert_eq!(header.last_offset(), 119);
    let decoded = decode_records(&batch).unwrap();
    for (i, (d, r)) in decoded.iter().zip(&records).enumerate() {
        assert_eq!(d.offset, 100 + i as i64);
        assert_eq!(d.timestamp, r.timestamp);
        assert_eq!(d.key, r.key);
        assert_eq!(d.value, r.value);
        assert_eq!(d.headers, r.headers);
    }
}

#[test]
fn flipped_byte_is_detected() {
    let mut builder = BatchBuilder::new();
    builder.push(&sample(1));
    let batch = builder.build_vec();
    for i in 0..batch.len() {
        let mut bad = batch.clone();
        bad[i] ^= 0x40;
        let result = validate_records(&Bytes::from(bad));
        // Base offset and leader epoch are not covered by the CRC; everything else is.
        if i < 8 || (12..16).contains(&i) {
            assert!(result.is_ok(), "byte {i}");
        } else {
            assert!(result.is_err(), "byte {i}");
        }
    }
}
