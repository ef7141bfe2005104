# The QEMU TPM TIS device (backed by the host swtpm) as domb sees it through the device TCTI.
e2e_check tpm-device sh -c 'ls -l /dev/tpm0 /dev/tpmrm0 && test -c /dev/tpmrm0'
e2e_check domb-tpm-info domb tpm info --tpm "$E2E_TPM"
e2e_check domb-tpm-info-json domb tpm info --tpm "$E2E_TPM" --json
e2e_file tpm-info.json "$E2E_OUT/domb-tpm-info-json.out"
e2e_check domb-tpm-pcrread domb tpm pcrread --tpm "$E2E_TPM"
e2e_file pcrread.txt "$E2E_OUT/domb-tpm-pcrread.out"
# Every active bank must be printed with all 24 PCRs.
_banks=$(grep -c '"sha' "$E2E_OUT/domb-tpm-info-json.out")
_lines=$(grep -c '^ *[0-9]*: 0x' "$E2E_OUT/domb-tpm-pcrread.out")
if [ "$_banks" -gt 0 ] && [ "$_lines" = $((_banks * 24)) ]; then
  e2e_pass domb-tpm-pcrread-banks "$_banks banks x 24 PCRs"
else
  e2e_fail domb-tpm-pcrread-banks "$_banks banks in tpm info but $_lines PCR lines"
fi
