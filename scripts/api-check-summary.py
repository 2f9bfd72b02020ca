import json, sys
print(json.dumps(json.load(open(sys.argv[1])), indent=1)[:3000])
